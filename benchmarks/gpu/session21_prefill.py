"""Session 21: two ways to spend less of the Llama layout's prefill outside useful work, on the PLAIN
kernel (163 registers since session 20; session 19's plan sweep ran on the 245-register one).

- 128-row tiles (32 tokens x a group of 4) with 8 warps: two warpgroups share each K/V tile, half the
  loads per product of 64-row tiles (cuDNN's kernel shares its K/V tiles between two consumer
  warpgroups). Session 6 measured them 6-12% slower on 1k-token rows with the kernel of then.
- Narrower key tiles along the diagonal (``PrefillLaunch.diagonal_block_n``): a 64-key tile there holds
  16 query tokens' keys, so it computes 0-48 keys no row sees; session 20 measured the diagonal tile at
  ~5% of 64 x 1k.

Each plan's GPU time (CUDA-graph replays) beside SDPA's, its error against SDPA, and what its compiled
kernel holds. ``python3 benchmarks/gpu/session21_prefill.py OUT.json [llama|qwen|both|overlap [IR_DIR]]``

``overlap`` (call 4): the full key tiles' loop issuing tile i + 1's scores before tile i's softmax
(``PrefillLaunch.overlap_softmax``, FlashAttention-3's overlap within a warpgroup, by hand), and Triton's
own warp specialization, on the Llama and Qwen layouts; IR_DIR gets each new variant's TTGIR and PTX.

Both launch fields were taken back: run this on a tree with
``benchmarks/results/session21/prefill-diagonal-and-overlap-experiment.diff`` applied.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from pagedllm.attention.triton.prefill import PrefillLaunch
from pagedllm.bench.kernels import graph_ms, make_prefill_case

sys.path.insert(0, "benchmarks/gpu")
from session20_prefill_occupancy import QWEN_SHAPES as QWEN
from session20_prefill_occupancy import SHAPES as LLAMA
from session20_prefill_occupancy import kernel_costs, time_launch

OVERLAP_PLANS: list[dict[str, Any]] = [
    {},
    {"overlap_softmax": True},
    {"overlap_softmax": True, "num_stages": 2},
    {"overlap_softmax": True, "num_stages": 4},
    {"warp_specialize": True},
    {},
    {"overlap_softmax": True},
]
LLAMA_PLANS: list[dict[str, Any]] = [
    {},
    {"diagonal_block_n": 16},
    {"diagonal_block_n": 32},
    {"block_m": 128, "block_n": 64, "num_warps": 8, "num_stages": 3},
    {"block_m": 128, "block_n": 64, "num_warps": 8, "num_stages": 2},
    {"block_m": 128, "block_n": 128, "num_warps": 8, "num_stages": 2},
    {"block_m": 64, "block_n": 128, "num_warps": 4, "num_stages": 2},
    {"block_m": 128, "block_n": 64, "num_warps": 8, "num_stages": 3, "diagonal_block_n": 32},
    {"block_m": 128, "block_n": 128, "num_warps": 8, "num_stages": 2, "diagonal_block_n": 32},
    {},
]
QWEN_PLANS: list[dict[str, Any]] = [{}, {"diagonal_block_n": 16}, {"diagonal_block_n": 32}, {}]
QWEN_OVERLAP_PLANS: list[dict[str, Any]] = [{}, {"overlap_softmax": True}, {}, {"overlap_softmax": True}]


def sweep_shape(
    heads: str, batch: int, context: int, plans: list[dict[str, Any]], dump: str | None = None
) -> list[dict[str, Any]]:
    device = torch.device("cuda")
    case = make_prefill_case(heads, batch, context, 16, torch.bfloat16, device)
    ref = case.sdpa().transpose(1, 2).reshape(case.query.shape).float()
    sdpa_us = (graph_ms([case.sdpa], device) or 0.0) * 1e3
    print(f"== {heads} {batch} x {context}: SDPA {sdpa_us:.1f} us", flush=True)
    rows = []
    for plan in plans:
        try:
            us, err, new = time_launch(case, ref, PrefillLaunch(**plan), {}, device)
        except Exception as e:  # a plan that does not compile is a line, not the end
            print(f"  {plan}: {type(e).__name__}: {str(e)[:200]}", flush=True)
            continue
        costs = kernel_costs(new)
        if dump:  # what Triton made of each new variant, for reading where it waits
            for n, k in enumerate(new):
                for ir in ("ttgir", "ptx"):
                    with open(
                        f"{dump}/{heads}-{'-'.join(f'{v}' for v in plan.values()) or 'default'}-{n}.{ir}", "w"
                    ) as f:
                        f.write(k.asm.get(ir, ""))
        rows.append({"heads": heads, "batch": batch, "context": context, "plan": plan, "us": us,
                     "sdpa_us": sdpa_us, "rel_err": err, "compiled": costs})  # fmt: skip
        print(f"  {plan!s:90}: {us:8.1f} us  x SDPA {us / sdpa_us:.3f}  err {err:.1e}  {costs}", flush=True)
    return rows


def main() -> None:
    mode = sys.argv[2] if len(sys.argv) > 2 else "both"
    rows = []
    if mode == "overlap":
        dump = sys.argv[3] if len(sys.argv) > 3 else None
        for shape in LLAMA:
            rows += sweep_shape(*shape, OVERLAP_PLANS, dump)
            torch.cuda.empty_cache()
        for shape in QWEN:
            rows += sweep_shape(*shape, QWEN_OVERLAP_PLANS, dump)
            torch.cuda.empty_cache()
    if mode in ("llama", "both"):
        for shape in LLAMA:
            rows += sweep_shape(*shape, LLAMA_PLANS)
            torch.cuda.empty_cache()
    if mode in ("qwen", "both"):
        for shape in QWEN:
            rows += sweep_shape(*shape, QWEN_PLANS)
            torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
