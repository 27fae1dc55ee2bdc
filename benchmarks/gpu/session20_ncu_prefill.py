"""Session 20: one prefill launch of ours and one of SDPA (cuDNN) for Nsight Compute, Llama layout
(32 / 8 heads of 128), bf16, the default plan: what our kernel waits on where cuDNN does not.

    ncu --profile-from-start off --section ... python3 benchmarks/gpu/session20_ncu_prefill.py [BATCH CONTEXT]
"""

from __future__ import annotations

import sys

import torch

from pagedllm.bench.kernels import make_prefill_case


def main() -> None:
    batch, context = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (16, 1024)
    device = torch.device("cuda")
    case = make_prefill_case("llama", batch, context, 16, torch.bfloat16, device)
    out = torch.empty_like(case.query)
    for _ in range(2):  # compiled and warm before the profiled range
        case.attend(out)
        case.sdpa()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    case.attend(out)
    case.sdpa()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


if __name__ == "__main__":
    main()
