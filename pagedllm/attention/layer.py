"""The attention module models use: projections happen in the model, paging happens here."""

from __future__ import annotations

import torch
from torch import nn

from pagedllm.attention.context import get_forward_context


class Attention(nn.Module):
    def __init__(self, layer_idx: int, num_heads: int, num_kv_heads: int, head_dim: int, scale: float):
        super().__init__()
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads={num_heads} is not a multiple of num_kv_heads={num_kv_heads}")
        self.layer_idx = layer_idx
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.scale = scale

    def forward(
        self,
        q: torch.Tensor,  # [num_tokens, num_heads * head_dim]
        k: torch.Tensor,  # [num_tokens, num_kv_heads * head_dim]
        v: torch.Tensor,  # [num_tokens, num_kv_heads * head_dim]
    ) -> torch.Tensor:  # [num_tokens, num_heads * head_dim]
        ctx = get_forward_context()
        num_tokens = q.shape[0]
        query = q.view(num_tokens, self.num_heads, self.head_dim)
        key = k.view(num_tokens, self.num_kv_heads, self.head_dim)
        value = v.view(num_tokens, self.num_kv_heads, self.head_dim)
        if ctx.attention_cut is not None:
            out = ctx.attention_cut(self.layer_idx, self.scale, query, key, value)
        else:
            cache = ctx.kv_caches[self.layer_idx]
            out = ctx.backend.forward(query, key, value, cache, ctx.metadata, self.scale)
        return out.reshape(num_tokens, self.num_heads * self.head_dim)
