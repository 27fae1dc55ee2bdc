"""Triton kernels for paged attention on NVIDIA GPUs (issue 5).

One file per job: ``kv_write`` (scatter new K/V into the cache), ``decode`` (one query token per
sequence, split over the context, then merged), ``prefill`` (variable-length new tokens, causal, over the
cached blocks), ``block_ops`` (copy-on-write copies and GPU <-> CPU swaps) and ``backend`` (the
``AttentionBackend`` that ties them together).

NOTE: importing this package imports ``triton``. Kernels are built as interpreted Python when the
environment variable ``TRITON_INTERPRET=1`` is set *before* this package is first imported (how the CPU
tests run them); otherwise they compile for the GPU.
"""

from pagedllm.attention.triton.backend import TritonAttentionBackend
from pagedllm.attention.triton.block_ops import copy_blocks, swap_blocks
from pagedllm.attention.triton.decode import choose_num_splits, paged_decode_attention
from pagedllm.attention.triton.interpreter_compat import prepare_interpreter
from pagedllm.attention.triton.kv_write import write_kv_cache
from pagedllm.attention.triton.prefill import paged_prefill_attention

prepare_interpreter()

__all__ = [
    "TritonAttentionBackend",
    "choose_num_splits",
    "copy_blocks",
    "paged_decode_attention",
    "paged_prefill_attention",
    "swap_blocks",
    "write_kv_cache",
]
