"""Gated activations for the fused gate/up projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pagedllm.model.layers import fused_ops


class SiluAndMul(nn.Module):
    """``silu(gate) * up`` where the input is ``[gate | up]`` along the last dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., 2 * d] -> [..., d]
        if fused_ops.is_available(x) and x.stride(-1) == 1:
            return fused_ops.silu_and_mul(x)
        gate, up = x.chunk(2, dim=-1)
        return F.silu(gate) * up
