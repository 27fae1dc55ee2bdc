"""The one attention interface every backend implements; models never know which backend runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable

import torch

from pagedllm.attention.metadata import AttentionMetadata


class AttentionBackend(ABC):
    """Writes new K/V into the paged cache and attends through block tables.

    KV cache layout, one tensor per layer:
        kv_cache: [2, num_blocks, block_size, num_kv_heads, head_dim]  (index 0 = K, 1 = V)
    A slot ``s`` is token ``s % block_size`` of block ``s // block_size``.
    """

    name: str = "abstract"

    @abstractmethod
    def write_kv(
        self,
        key: torch.Tensor,  # [num_tokens, num_kv_heads, head_dim]
        value: torch.Tensor,  # [num_tokens, num_kv_heads, head_dim]
        kv_cache: torch.Tensor,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
        slot_mapping: torch.Tensor,  # [num_tokens] int64, -1 = skip
    ) -> None: ...

    @abstractmethod
    def attend(
        self,
        query: torch.Tensor,  # [num_tokens, num_heads, head_dim]
        kv_cache: torch.Tensor,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
        metadata: AttentionMetadata,
        scale: float,
        out: torch.Tensor | None = None,  # [num_tokens, num_heads, head_dim], written and returned if given
    ) -> torch.Tensor:  # [num_tokens, num_heads, head_dim]
        ...

    def attend_after_write(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        kv_cache: torch.Tensor,
        metadata: AttentionMetadata,
        scale: float,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``forward``'s second half: attention for a step whose ``key``/``value`` ``write_kv`` has
        already stored. A backend may read the new tokens' K/V from them instead of the cache (the same
        values); this one reads the cache."""
        return self.attend(query, kv_cache, metadata, scale, out=out)

    def decode_kernel_variant(
        self, num_seqs: int, num_kv_heads: int, head_dim: int, max_seq_len: int, device: torch.device
    ) -> Hashable | None:
        """Which compiled decode kernel a step of ``num_seqs`` sequences, the longest ``max_seq_len``
        tokens, runs: for a backend that compiles one per plan, so that every variant can be compiled
        before serving (``worker/kernel_warmup.py``). None: nothing compiles per step."""
        return None

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        kv_cache: torch.Tensor,
        metadata: AttentionMetadata,
        scale: float,
    ) -> torch.Tensor:
        # NOTE: K/V are stored before attending, so a token attends to itself through the cache.
        self.write_kv(key, value, kv_cache, metadata.slot_mapping)
        return self.attend_after_write(query, key, value, kv_cache, metadata, scale)
