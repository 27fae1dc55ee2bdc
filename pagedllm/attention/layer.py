"""The attention module models use: projections happen in the model, paging happens here."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pagedllm.attention.context import get_forward_context


@dataclass(frozen=True, slots=True)
class KVStore:
    """A step's values and where its keys and values go: a kernel that computes the keys (rotary, Qwen3's
    norm and rotary) may store both itself, one launch fewer per layer than attention's own K/V write."""

    value: torch.Tensor  # [num_tokens, num_kv_heads * head_dim], contiguous along the last dimension
    kv_cache: torch.Tensor  # [2, num_blocks, block_size, num_kv_heads, head_dim]: this layer's
    slot_mapping: torch.Tensor  # [num_tokens] int64, -1 = store nothing


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

    def kv_store(self, v: torch.Tensor) -> KVStore:
        """Where this step's K/V go, for a kernel that stores them before ``forward(..., kv_stored=True)``.

        NOTE: every backend reads the one layout of ``AttentionBackend`` and stores a token at its slot;
        a kernel that stores there does what the backend's ``write_kv`` would."""
        return KVStore(v, *self.kv_destination())

    def kv_destination(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(this layer's KV cache, the step's slot mapping): ``kv_store``'s, for a kernel that computes the
        values as well as the keys (the qkv projection's rotated launch)."""
        ctx = get_forward_context()
        return ctx.kv_caches[self.layer_idx], ctx.metadata.slot_mapping

    def forward(
        self,
        q: torch.Tensor,  # [num_tokens, num_heads * head_dim]
        k: torch.Tensor,  # [num_tokens, num_kv_heads * head_dim]
        v: torch.Tensor,  # [num_tokens, num_kv_heads * head_dim]
        kv_stored: bool = False,  # k and v are already in the cache (see ``kv_store``)
    ) -> torch.Tensor:  # [num_tokens, num_heads * head_dim]
        ctx = get_forward_context()
        num_tokens = q.shape[0]
        query = q.view(num_tokens, self.num_heads, self.head_dim)
        key = k.view(num_tokens, self.num_kv_heads, self.head_dim)
        value = v.view(num_tokens, self.num_kv_heads, self.head_dim)
        if ctx.attention_cut is not None:
            out = ctx.attention_cut(self.layer_idx, self.scale, query, key, value, kv_stored)
        else:
            cache = ctx.kv_caches[self.layer_idx]
            if kv_stored:
                out = ctx.backend.attend_after_write(query, key, value, cache, ctx.metadata, self.scale)
            else:
                out = ctx.backend.forward(query, key, value, cache, ctx.metadata, self.scale)
        return out.reshape(num_tokens, self.num_heads * self.head_dim)
