"""Session 22: the engine's prefill kernel with a boolean ``PrefillLaunch`` field on and off, as the
engine launches it on a plain prefill: each beside SDPA and beside each other (CUDA graphs replayed in
turn, so the clocks under the power cap move both alike), and the outputs' error against SDPA.

    python3 benchmarks/gpu/session22_prefill_ab.py OUT.json FIELD [growing]

Calls 5 and 7 ran it on trees with a diff of ``benchmarks/results/session22/`` applied (its field does
not exist in main):
- ``lazy_rescale`` (call 5, ``prefill-lazy-rescale-attempt.diff``): the output rescaled only when a
  row's max grew by more than 2^8 (FlashAttention-4's conditional rescaling). ``growing`` adds its
  worst case: scores that grow along the sequence past the threshold on every tile. Call 5 ran an
  earlier form of this script whose ``growing`` row failed to unpack.
- ``lean`` (call 7, ``prefill-lean-attempt.diff``): one unsigned compare a score on the diagonal
  tiles, and the output divided by a reciprocal a row (ncu, call 6: the kernel issues 1.33x cuDNN's
  instructions, a third of them outside the main loop). That change landed without the field.
"""

from __future__ import annotations

import json
import sys

import torch

from pagedllm.attention.triton.prefill import PrefillLaunch
from pagedllm.bench.kernels import graph_ms_interleaved, make_prefill_case

SHAPES = [
    ("llama", 64, 1024),
    ("llama", 16, 1024),
    ("llama", 16, 4096),
    ("llama", 1, 16384),
    ("qwen", 64, 1024),
    ("qwen", 16, 4096),
]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def main() -> None:
    device = torch.device("cuda")
    field = sys.argv[2]
    on, off = PrefillLaunch(**{field: True}), PrefillLaunch(**{field: False})
    rows = []
    for shape in SHAPES + (["growing"] if "growing" in sys.argv[3:] else []):
        growing = shape == "growing"
        heads, batch, context = ("llama", 16, 1024) if growing else shape
        case = make_prefill_case(heads, batch, context, 16, torch.bfloat16, device)
        if growing:  # every score q . k_t = 1.28 t: the max grows by ~82 (base 2: ~10) a 64-key tile
            t = torch.arange(context, device=device).repeat(batch).view(-1, 1, 1)
            case.query.fill_(1.0)
            case.key.copy_((0.01 * t).expand_as(case.key))
        outs = {name: torch.full_like(case.query, float("nan")) for name in ("on", "off")}

        def with_on(case=case, out=outs["on"]) -> None:
            case.attend(out, on)

        def with_off(case=case, out=outs["off"]) -> None:
            case.attend(out, off)

        with_on()
        with_off()
        torch.cuda.synchronize()
        num_heads, head_dim = case.query.shape[1:]
        row = {"field": field, "heads": heads, "batch": batch, "context": context, "growing": growing,
               "on_vs_off_rel_err": rel(outs["on"], outs["off"])}  # fmt: skip
        if not growing:
            ref = case.sdpa().transpose(1, 2).reshape(-1, num_heads, head_dim)
            for name, fn in (("on", with_on), ("off", with_off)):
                row[f"{name}_rel_err_vs_sdpa"] = rel(outs[name], ref)
                us, sdpa_us = (x * 1e3 for x in graph_ms_interleaved([fn], [case.sdpa], device))
                row[f"{name}_us"], row[f"{name}_sdpa_us"] = us, sdpa_us
                row[f"{name}_x_sdpa"] = us / sdpa_us
        a, b = graph_ms_interleaved([with_on], [with_off], device)
        row["head_to_head_on_us"], row["head_to_head_off_us"] = a * 1e3, b * 1e3
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(sys.argv[1], "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
        del case, outs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
