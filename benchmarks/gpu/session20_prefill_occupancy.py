"""Session 20: does a third (or fourth) prefill program an SM close the Llama layout's gap to cuDNN?

Session 19 found the default plan (64-row tiles, 64 keys, 4 warps, 3 stages, TMA) compiled to 245
registers and 115,712 bytes of shared memory: exactly two programs an SM, and no plan of its sweep
(64/128 rows and keys, 2-4 stages, 4/8 warps, warp specialization) faster. That sweep never capped the
registers (ptxas maxnreg) nor tried 32-key tiles, the two things that let more programs share an SM:
- 64 x 32 tiles, 3 stages: ~64 KB of shared memory; under 168 registers, three programs an SM.
- 64 x 32 tiles, 2 stages: ~48 KB; under 128 registers, four.
Each plan's GPU time (CUDA-graph replays) beside SDPA's, its error against SDPA, and what its compiled
kernel holds (registers, spills, shared memory).

    python3 benchmarks/gpu/session20_prefill_occupancy.py OUT.json [all|default|two]

``all`` (call 1): every plan, the Llama layout. ``default``: the engine's launch, both layouts (for
trees that change the kernel, not the plan); ``llama``: the same, the Llama layout only; ``two``:
``default`` and 64 x 32 tiles under 168 registers; ``variants``: the default launch told its
sequences' facts (a plain prefill: the PLAIN variant) and told nothing (the general variant).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from pagedllm.attention.triton import prefill
from pagedllm.attention.triton.prefill import PrefillLaunch
from pagedllm.bench.kernels import graph_ms, make_prefill_case

SHAPES = [
    ("llama", 16, 1024),
    ("llama", 64, 1024),
    ("llama", 4, 1024),
    ("llama", 1, 4096),
    ("llama", 16, 4096),
]
QWEN_SHAPES = [("qwen", 16, 1024), ("qwen", 64, 1024), ("qwen", 4, 1024), ("qwen", 1, 4096)]
DEFAULT = None  # the launch as the engine runs it: PrefillLaunch()
PLANS: list[Plan | None] = [  # block_m, block_n, num_warps, num_stages, max_registers (TMA on)
    DEFAULT,
    (64, 64, 4, 3, 168),
    (64, 64, 4, 2, 168),
    (64, 32, 4, 3, None),
    (64, 32, 4, 3, 168),
    (64, 32, 4, 3, 128),
    (64, 32, 4, 2, 128),
    (128, 32, 8, 3, 128),
]


def compiled_kernels() -> dict[int, Any]:
    """Every compiled variant of the prefill kernel so far, by identity."""
    found: dict[int, Any] = {}
    for cache in prefill._prefill_kernel.device_caches.values():
        kernels = cache[0] if isinstance(cache, tuple) else cache
        for kernel in kernels.values():
            found[id(kernel)] = kernel
    return found


def time_launch(
    case: Any, ref: torch.Tensor, launch: PrefillLaunch, facts: dict[str, Any], device: torch.device
) -> tuple[float, float, list[Any]]:
    """Our kernel with ``launch`` on ``case``: GPU time (us), error against SDPA's ``ref``, and the
    variants it compiled. Raises where the plan does not compile."""
    out = torch.full_like(case.query, float("nan"))

    def ours() -> None:
        case.attend(out, launch, **facts)

    before = compiled_kernels()
    ours()
    err = ((out.float() - ref).norm() / ref.norm()).item()
    us = (graph_ms([ours], device) or 0.0) * 1e3
    return us, err, [k for i, k in compiled_kernels().items() if i not in before]


def kernel_costs(kernels: list[Any]) -> list[dict[str, Any]]:
    """What each compiled variant holds: registers, spills, shared memory."""
    return [
        {
            "regs": getattr(k, "n_regs", None),
            "spills": getattr(k, "n_spills", None),
            "shared": k.metadata.shared,
        }
        for k in kernels
    ]


Plan = tuple[int, int, int, int, "int | None"]
GENERAL = "general"  # the default launch told nothing of its sequences: the general variant


def sweep_shape(
    heads: str, batch: int, context: int, plans: list[Plan | str | None], device: torch.device
) -> list[dict[str, Any]]:
    case = make_prefill_case(heads, batch, context, 16, torch.bfloat16, device)
    ref = case.sdpa().transpose(1, 2).reshape(case.query.shape).float()
    sdpa_us = (graph_ms([case.sdpa], device) or 0.0) * 1e3
    print(f"== {heads} {batch} x {context}: SDPA {sdpa_us:.1f} us", flush=True)
    rows = []
    for plan in plans:
        facts: dict[str, Any] = {}
        if plan is None:
            launch, label = PrefillLaunch(), "default"
        elif plan == GENERAL:
            launch, label, facts = PrefillLaunch(), GENERAL, {"cached_prefix": True, "shortest_query": None}
        else:
            assert not isinstance(plan, str)
            bm, bn, warps, stages, regs = plan
            launch = PrefillLaunch(block_m=bm, block_n=bn, num_warps=warps, num_stages=stages, tma=True,
                                   max_registers=regs)  # fmt: skip
            label = f"{bm:3} x {bn:3} w{warps} s{stages} r{regs!s:4}"
        try:
            us, err, new = time_launch(case, ref, launch, facts, device)
        except Exception as e:  # a plan that does not compile is a line, not the end
            print(f"  {label}: {type(e).__name__}: {str(e)[:160]}")
            continue
        costs = kernel_costs(new)
        rows.append({"heads": heads, "batch": batch, "context": context, "plan": plan, "us": us,
                     "sdpa_us": sdpa_us, "rel_err": err, "compiled": costs})  # fmt: skip
        print(f"  {label:28}: {us:8.1f} us  x SDPA {us / sdpa_us:.3f}  err {err:.1e}  {costs}", flush=True)
    return rows


def main() -> None:
    device = torch.device("cuda")
    mode = sys.argv[2] if len(sys.argv) > 2 else "all"
    plans: list[Plan | str | None] = {
        "all": [*PLANS],
        "default": [DEFAULT],
        "llama": [DEFAULT],
        "two": [DEFAULT, (64, 32, 4, 3, 168)],
        "variants": [DEFAULT, GENERAL],
    }[mode]
    rows = []
    for heads, batch, context in SHAPES + (QWEN_SHAPES if mode in ("default", "two", "variants") else []):
        others = [p for p in plans if p is None or p == GENERAL]
        rows += sweep_shape(heads, batch, context, plans if heads == "llama" else others, device)
        torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
