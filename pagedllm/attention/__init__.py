"""Paged attention: one interface (``AttentionBackend``), several backends."""

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import ForwardContext, forward_context, get_forward_context
from pagedllm.attention.layer import Attention
from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.attention.reference import ReferenceAttentionBackend

__all__ = [
    "Attention",
    "AttentionBackend",
    "AttentionMetadata",
    "ForwardContext",
    "ReferenceAttentionBackend",
    "forward_context",
    "get_forward_context",
]
