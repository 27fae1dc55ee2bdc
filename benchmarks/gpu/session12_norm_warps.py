"""Session 12, call 16: `pagedllm bench decode` with RMSNorm's Triton kernel launched with
``S12_NORM_WARPS`` warps a row instead of ``min(16, block // 256)`` (8 for the 1B's 2,048 features). The
rest of the command line is ``pagedllm bench decode``'s."""

import os
import sys

import torch
import triton

from pagedllm import pdl
from pagedllm.cli import main
from pagedllm.model.layers import fused_ops

WARPS = int(os.environ.get("S12_NORM_WARPS", "0"))


def _rms_norm(x, weight, eps, residual=None):  # type: ignore[no-untyped-def]
    """fused_ops.rms_norm with the warp count of S12_NORM_WARPS."""
    n = x.shape[-1]
    x2 = x.reshape(-1, n)
    out = torch.empty_like(x2)
    if x2.shape[0]:
        r2 = residual.view(-1, n) if residual is not None else x2
        fused_ops._rms_norm_kernel[(x2.shape[0],)](
            x2, r2, out, weight, n, x2.stride(0), r2.stride(0), out.stride(0), eps,
            HAS_RESIDUAL=residual is not None, BLOCK=triton.next_power_of_2(n), num_warps=WARPS,
            **pdl.kernel_args(pdl.enabled(x.device)),
        )  # fmt: skip
    return out.view(x.shape)


if WARPS:
    fused_ops.rms_norm = _rms_norm

sys.exit(main(["bench", "decode", *sys.argv[1:]]))
