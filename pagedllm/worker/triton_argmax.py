"""Greedy sampling's argmax over the vocabulary in two short Triton launches (CUDA; the sampler imports
this module on first use, so the CPU tests' ``TRITON_INTERPRET`` is read when the kernels are made).

torch's ``argmax(dim=-1)`` reduces each row of the logits in one long pass: on an H100 it took 27 us for
64 x 128,256 bf16 logits and 47 us for 256 rows (CUDA-graph replays), against the ~6 and ~22 us those
bytes take to read. Here every row is cut into chunks read by many programs at once (one partial
maximum each), and a second launch picks each row's winner among its chunks: 10 and 34 us
(benchmarks/gpu/session7_argmax.py).

The result equals ``torch.argmax``: the first index of the maximum, a NaN counting as larger than any
number (the first NaN wins), index 0 for a row of -inf.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from pagedllm import pdl

CHUNK = 8192  # logits per program of the first pass: 16 programs a row for a 128k vocabulary
BLOCK = 4096  # logits per load: 16 per thread at 8 warps (two 16-byte loads of bf16)
_NO_INDEX = tl.constexpr(2**31 - 1)  # above every column index


@triton.jit
def _first_max(values, indices):
    """The largest value (NaN above every number) and the smallest index among its ties."""
    is_nan = values != values
    any_nan = tl.max(is_nan.to(tl.int32), 0) > 0
    top = tl.max(tl.where(is_nan, float("-inf"), values), 0)
    wins = tl.where(any_nan, is_nan, values == top)
    index = tl.min(tl.where(wins, indices, _NO_INDEX), 0)
    value = tl.where(any_nan, float("nan"), top)
    return value, index


@triton.jit
def _chunk_max_kernel(
    logits_ptr,  # [rows, vocab]
    chunk_value_ptr,  # [rows, num_chunks] float32
    chunk_index_ptr,  # [rows, num_chunks] int32
    vocab_size,
    stride_row,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    pdl.wait_then_release(USE_PDL)
    row = tl.program_id(0)
    chunk = tl.program_id(1)
    num_chunks = tl.num_programs(1)
    base = logits_ptr + row.to(tl.int64) * stride_row
    lanes = tl.arange(0, BLOCK)
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    best_at = tl.zeros([BLOCK], tl.int32)
    for start in tl.range(chunk * CHUNK, (chunk + 1) * CHUNK, BLOCK):
        cols = start + lanes
        x = tl.load(base + cols, mask=cols < vocab_size, other=float("-inf")).to(tl.float32)
        # Each lane keeps its first maximum: a later column replaces only what it beats.
        take = (x > best) | ((x != x) & (best == best))
        best = tl.where(take, x, best)
        best_at = tl.where(take, cols, best_at)
    value, index = _first_max(best, best_at)
    slot = row * num_chunks + chunk
    tl.store(chunk_value_ptr + slot, value)
    tl.store(chunk_index_ptr + slot, index)


@triton.jit
def _merge_chunks_kernel(
    chunk_value_ptr,
    chunk_index_ptr,
    out_ptr,  # [rows] int64
    num_chunks,
    CHUNKS_P: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    pdl.wait_then_release(USE_PDL)
    row = tl.program_id(0)
    c = tl.arange(0, CHUNKS_P)
    ok = c < num_chunks
    values = tl.load(chunk_value_ptr + row * num_chunks + c, mask=ok, other=float("-inf"))
    indices = tl.load(chunk_index_ptr + row * num_chunks + c, mask=ok, other=_NO_INDEX)
    _, index = _first_max(values, indices)
    tl.store(out_ptr + row, index.to(tl.int64))


def argmax_rows(logits: torch.Tensor, chunk: int = CHUNK, block: int = BLOCK) -> torch.Tensor:
    """The Triton argmax of each row of ``logits`` [rows, vocab] (last dimension contiguous)."""
    rows, vocab_size = logits.shape
    out = torch.empty(rows, dtype=torch.int64, device=logits.device)
    if rows == 0:
        return out
    if vocab_size == 0:
        raise ValueError("argmax of an empty vocabulary")
    block = min(block, triton.next_power_of_2(vocab_size))
    chunk = max(chunk, block)
    if chunk % block:
        raise ValueError(f"chunk={chunk} must be a multiple of block={block}")
    num_chunks = triton.cdiv(vocab_size, chunk)
    chunk_value = torch.empty(rows, num_chunks, dtype=torch.float32, device=logits.device)
    chunk_index = torch.empty(rows, num_chunks, dtype=torch.int32, device=logits.device)
    use_pdl = pdl.enabled(logits.device)
    _chunk_max_kernel[(rows, num_chunks)](
        logits, chunk_value, chunk_index, vocab_size, logits.stride(0), CHUNK=chunk, BLOCK=block,
        num_warps=8 if block >= 2048 else 4, **pdl.kernel_args(use_pdl),
    )  # fmt: skip
    _merge_chunks_kernel[(rows,)](
        chunk_value, chunk_index, out, num_chunks, CHUNKS_P=triton.next_power_of_2(num_chunks),
        num_warps=1, **pdl.kernel_args(use_pdl),
    )  # fmt: skip
    return out
