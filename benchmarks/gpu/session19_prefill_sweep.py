"""Session 19: prefill launch plans for the Llama layout (32 / 8 heads of 128, TMA), GPU time only.

Call 6 (session19_prefill_host.py) timed the default plan (64-row tiles, 64 keys, 4 warps, 3 stages)
from CUDA-graph replays at 1.39x of SDPA (cuDNN) on 16 x 1k, 1.27x on 4 x 1k, 1.18x on 1 x 4k: the more
programs (8,192 at 16 x 1k against 2,048 at 1 x 4k for the same FLOPs), the further behind. This times
other tile plans the same way, beside SDPA, to see whether fewer and larger programs close that at
today's kernel.
Run as session 19's call 7 (results/session19/call7-prefill-sweep.json).

    python3 benchmarks/gpu/session19_prefill_sweep.py OUT.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from pagedllm.attention.triton.prefill import PrefillLaunch
from pagedllm.bench.kernels import graph_ms, make_prefill_case

SHAPES = [(16, 1024), (4, 1024), (1, 4096), (64, 1024)]
PLANS = [  # block_m, block_n, num_warps, num_stages, warp_specialize
    (64, 64, 4, 3, False),
    (64, 64, 4, 4, False),
    (64, 128, 4, 2, False),
    (64, 128, 8, 2, False),
    (128, 64, 8, 3, False),
    (128, 128, 8, 2, False),
    (128, 64, 4, 3, False),
    (64, 64, 4, 3, True),
    (128, 64, 8, 3, True),
]


def sweep_shape(batch: int, context: int, device: torch.device) -> list[dict[str, Any]]:
    case = make_prefill_case("llama", batch, context, 16, torch.bfloat16, device)
    ref = case.sdpa().transpose(1, 2).reshape(case.query.shape).float()
    sdpa_us = (graph_ms([case.sdpa], device) or 0.0) * 1e3
    print(f"== llama {batch} x {context}: SDPA {sdpa_us:.1f} us", flush=True)
    rows = []
    for bm, bn, warps, stages, ws in PLANS:
        launch = PrefillLaunch(
            block_m=bm, block_n=bn, num_warps=warps, num_stages=stages, tma=True, warp_specialize=ws
        )
        out = torch.full_like(case.query, float("nan"))

        def ours(launch: PrefillLaunch = launch, out: torch.Tensor = out) -> None:
            case.attend(out, launch)

        try:
            ours()
            err = ((out.float() - ref).norm() / ref.norm()).item()
            us = (graph_ms([ours], device) or 0.0) * 1e3
        except Exception as e:  # a plan that does not compile is a line, not the end
            print(f"  {bm:3} x {bn:3} w{warps} s{stages} ws={ws}: {type(e).__name__}: {str(e)[:120]}")
            continue
        rows.append({"batch": batch, "context": context, "plan": [bm, bn, warps, stages, ws],
                     "us": us, "sdpa_us": sdpa_us, "rel_err": err})  # fmt: skip
        print(f"  {bm:3} x {bn:3} w{warps} s{stages} ws={ws!s:5}: {us:8.1f} us  x SDPA {us / sdpa_us:.3f}"
              f"  err {err:.1e}", flush=True)  # fmt: skip
    return rows


def main() -> None:
    device = torch.device("cuda")
    rows = []
    for batch, context in SHAPES:
        rows += sweep_shape(batch, context, device)
        torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
