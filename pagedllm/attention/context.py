"""The scoped forward context: what attention layers read during one model step.

The model runner enters ``forward_context(...)`` around a forward pass; each ``Attention`` layer reads
the step's metadata, its own layer's KV cache and the backend from it. Models therefore take only
``input_ids`` and ``positions`` and never know which backend runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.metadata import AttentionMetadata


class AttentionCut(Protocol):
    """Takes an attention layer's place while a forward pass is captured in pieces (CUDA graphs that
    stop at every attention: ``worker/piecewise_graphs.py``): stores the step's K/V within the piece
    being captured (unless ``kv_stored``: a kernel before did), ends it, and returns the tensor that the
    attention, run eagerly between two replays, will write."""

    def __call__(
        self,
        layer_idx: int,
        scale: float,
        query: torch.Tensor,  # [num_tokens, num_heads, head_dim]
        key: torch.Tensor,  # [num_tokens, num_kv_heads, head_dim]
        value: torch.Tensor,
        kv_stored: bool,
    ) -> torch.Tensor: ...  # [num_tokens, num_heads, head_dim]


@dataclass(slots=True)
class ForwardContext:
    metadata: AttentionMetadata
    kv_caches: list[torch.Tensor]  # one [2, num_blocks, block_size, num_kv_heads, head_dim] per layer
    backend: AttentionBackend
    attention_cut: AttentionCut | None = None  # set only while capturing piecewise graphs


_current: ForwardContext | None = None


@contextmanager
def forward_context(
    metadata: AttentionMetadata,
    kv_caches: list[torch.Tensor],
    backend: AttentionBackend,
    attention_cut: AttentionCut | None = None,
) -> Iterator[ForwardContext]:
    global _current
    previous = _current
    _current = ForwardContext(metadata, kv_caches, backend, attention_cut)
    try:
        yield _current
    finally:
        _current = previous


def get_forward_context() -> ForwardContext:
    if _current is None:
        raise RuntimeError("attention layer called outside forward_context(); run models via ModelRunner")
    return _current
