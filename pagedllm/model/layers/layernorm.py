"""RMSNorm, computed in float32 and cast back exactly as Hugging Face's Llama/Qwen norms do."""

from __future__ import annotations

from typing import overload

import torch
from torch import nn

from pagedllm.model.layers import fused_ops


class RMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        if hidden_size <= 0:
            raise ValueError(f"hidden_size={hidden_size} must be > 0")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))

    @overload
    def forward(self, x: torch.Tensor, residual: None = None) -> torch.Tensor: ...

    @overload
    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def forward(
        self,
        x: torch.Tensor,  # [..., hidden_size]
        residual: torch.Tensor | None = None,  # [..., hidden_size]
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``norm(x)``; with ``residual``, ``(norm(x + residual), x + residual)``: the pre-norm add fused in.

        NOTE: the add happens in the model dtype, as in Hugging Face, so bf16 runs round the same way.
        On CUDA one Triton kernel does it all, writing ``x + residual`` into ``residual``'s storage.
        """
        if fused_ops.is_available(x) and x.stride(-1) == 1:
            if residual is None:
                return fused_ops.rms_norm(x, self.weight, self.eps)
            if residual.is_contiguous():
                return fused_ops.rms_norm(x, self.weight, self.eps, residual), residual
        if residual is None:
            return self._norm(x)
        x = x + residual
        return self._norm(x), x

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        variance = x32.pow(2).mean(-1, keepdim=True)
        # Cast back before scaling: the weight multiply happens in the model dtype, as in transformers.
        return self.weight * (x32 * torch.rsqrt(variance + self.eps)).to(x.dtype)
