"""The scoped forward context: what attention layers read during one model step.

The model runner enters ``forward_context(...)`` around a forward pass; each ``Attention`` layer reads
the step's metadata, its own layer's KV cache and the backend from it. Models therefore take only
``input_ids`` and ``positions`` and never know which backend runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.metadata import AttentionMetadata


@dataclass(slots=True)
class ForwardContext:
    metadata: AttentionMetadata
    kv_caches: list[torch.Tensor]  # one [2, num_blocks, block_size, num_kv_heads, head_dim] per layer
    backend: AttentionBackend


_current: ForwardContext | None = None


@contextmanager
def forward_context(
    metadata: AttentionMetadata, kv_caches: list[torch.Tensor], backend: AttentionBackend
) -> Iterator[ForwardContext]:
    global _current
    previous = _current
    _current = ForwardContext(metadata, kv_caches, backend)
    try:
        yield _current
    finally:
        _current = previous


def get_forward_context() -> ForwardContext:
    if _current is None:
        raise RuntimeError("attention layer called outside forward_context(); run models via ModelRunner")
    return _current
