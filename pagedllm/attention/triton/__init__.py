"""Triton kernels for paged attention on NVIDIA GPUs (issue 5).

One file per job: ``kv_write`` (scatter new K/V into the cache), ``decode`` (one query token per
sequence, split over the context, then merged), ``prefill`` (variable-length new tokens, causal, over the
cached blocks) and ``backend`` (the ``AttentionBackend`` that ties them together). Whole-block copies
and swaps are plain torch and live in ``pagedllm.worker.block_ops``.

NOTE: importing this package imports ``triton``. Kernels are built as interpreted Python when the
environment variable ``TRITON_INTERPRET=1`` is set *before* this package is first imported (how the CPU
tests run them); otherwise they compile for the GPU.
"""

from pagedllm.attention.triton.backend import TritonAttentionBackend
from pagedllm.attention.triton.decode import choose_num_splits, paged_decode_attention
from pagedllm.attention.triton.interpreter_compat import prepare_interpreter
from pagedllm.attention.triton.kv_write import write_kv_cache
from pagedllm.attention.triton.prefill import paged_prefill_attention

prepare_interpreter()

__all__ = [
    "TritonAttentionBackend",
    "choose_num_splits",
    "paged_decode_attention",
    "paged_prefill_attention",
    "write_kv_cache",
]
