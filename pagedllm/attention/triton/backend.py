"""``TritonAttentionBackend``: the Triton kernels behind the one attention interface."""

from __future__ import annotations

import itertools
from collections.abc import Hashable

import torch

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.attention.triton.decode import decode_variant, paged_decode_attention
from pagedllm.attention.triton.kv_write import write_kv_cache
from pagedllm.attention.triton.prefill import paged_prefill_attention

MIXED_BATCH_MODES = ("split", "unified")


class TritonAttentionBackend(AttentionBackend):
    """Pure-decode steps run the split-K decode kernel; steps with prefill tokens run the prefill kernel.

    ``mixed_batch``: in a step that mixes decodes and prefills, ``"split"`` gives the decodes to the
    decode kernel (split over their context) and the rest to the prefill kernel, two launches that each
    skip the other's sequences on the device; ``"unified"`` runs every sequence through the prefill
    kernel. ``num_splits`` fixes the decode split count (for CUDA-graph capture); ``None`` chooses it
    per step from the batch shape.
    """

    name = "triton"

    def __init__(self, mixed_batch: str = "split", num_splits: int | None = None) -> None:
        if mixed_batch not in MIXED_BATCH_MODES:
            raise ValueError(f"mixed_batch={mixed_batch!r}; choose one of {MIXED_BATCH_MODES}")
        if num_splits is not None and num_splits < 1:
            raise ValueError(f"num_splits must be None or >= 1, got {num_splits}")
        self.mixed_batch = mixed_batch
        self.num_splits = num_splits
        # attend() runs once per layer on the same metadata: look at the host lengths once per step.
        self._seen_metadata: AttentionMetadata | None = None
        self._seen_has_decode = False
        # The prefill kernel's facts, (cached prefix, fewest new tokens), for its sequences in a mixed
        # step split between the kernels (decodes aside) and for all of them.
        self._seen_prefill_facts = (True, 1)
        self._seen_all_facts = (True, 1)

    def write_kv(
        self,
        key: torch.Tensor,
        value: torch.Tensor,
        kv_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
    ) -> None:
        write_kv_cache(key, value, kv_cache, slot_mapping)

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
        # NOTE: the prefill kernel reads the new tokens' K/V from key/value (contiguous rows, no block
        # lookups; the cache holds the same values) and only the cached prefix through the block table.
        return self.attend(query, kv_cache, metadata, scale, out=out, new_kv=(key, value))

    def attend(
        self,
        query: torch.Tensor,
        kv_cache: torch.Tensor,
        metadata: AttentionMetadata,
        scale: float,
        out: torch.Tensor | None = None,
        new_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``new_kv``: the step's (key, value), already in the cache, for the prefill kernel to read
        directly; without it every key comes through the cache."""
        if out is None:
            out = torch.empty_like(query)  # [num_tokens, num_heads, head_dim]
        common = (metadata.block_tables, metadata.seq_lens, metadata.query_start_loc)
        if metadata.is_pure_decode:
            paged_decode_attention(
                out, query, kv_cache, *common, metadata.max_seq_len, scale, num_splits=self.num_splits
            )
            return out
        split = self.mixed_batch == "split" and self._has_decode(metadata)
        if split:
            paged_decode_attention(
                out,
                query,
                kv_cache,
                *common,
                metadata.max_seq_len,
                scale,
                num_splits=self.num_splits,
                decodes_only=True,
            )
        key, value = new_kv if new_kv is not None else (None, None)
        cached_prefix, shortest = self.prefill_facts(metadata, split)
        paged_prefill_attention(
            out, query, kv_cache, *common, scale, key=key, value=value, skip_decodes=split,
            cached_prefix=cached_prefix, shortest_query=shortest,
        )  # fmt: skip
        return out

    def decode_kernel_variant(
        self, num_seqs: int, num_kv_heads: int, head_dim: int, max_seq_len: int, device: torch.device
    ) -> Hashable:
        plan = decode_variant(num_seqs, num_kv_heads, head_dim, max_seq_len, device, self.num_splits)
        return plan.compiled

    def prefill_facts(self, metadata: AttentionMetadata, skip_decodes: bool) -> tuple[bool, int]:
        """(whether a sequence has cached tokens, the fewest new tokens of one) over the sequences the
        prefill kernel attends: every one, or those of more than one new token where it skips decodes.
        Where they allow, the kernel runs its faster variant (``paged_prefill_attention``)."""
        self._look_at(metadata)
        return self._seen_prefill_facts if skip_decodes else self._seen_all_facts

    def _has_decode(self, metadata: AttentionMetadata) -> bool:
        self._look_at(metadata)
        return self._seen_has_decode

    def _look_at(self, metadata: AttentionMetadata) -> None:
        if metadata is self._seen_metadata:
            return
        query_lens = [b - a for a, b in itertools.pairwise(metadata.query_start_loc_host)]
        lens = list(zip(query_lens, metadata.seq_lens_host, strict=True))
        prefills = [(q, s) for q, s in lens if q > 1]
        self._seen_has_decode = len(prefills) < len(lens)
        self._seen_prefill_facts = _facts(prefills)
        self._seen_all_facts = _facts(lens)
        self._seen_metadata = metadata


def _facts(lens: list[tuple[int, int]]) -> tuple[bool, int]:
    """(some sequence has cached tokens, the fewest new tokens) of (new tokens, context) pairs."""
    return any(s > q for q, s in lens), min((q for q, _ in lens), default=1)
