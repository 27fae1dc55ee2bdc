"""Paged prefill/extend attention: each sequence's new tokens attend causally to its cached blocks and
to each other (plain prefill, chunked prefill, prefix-cache hits; decodes too, as query length 1).

One program per (tile of BLOCK_Q new tokens of one sequence, KV head). The tile's rows are its tokens x
the query heads of the KV head (GQA), so each K/V tile is read once for the whole group. Programs find
their sequence on the device by counting the sequence starts at or before their tile: the grid is an
upper bound (``num_tokens // BLOCK_Q + num_seqs`` tiles) that needs no host knowledge of the lengths.

Given the step's own K/V (what the backend's forward just wrote into the cache), the new tokens' keys are
read from them, contiguous (through TMA descriptors on Hopper from head dim 128), and only the cached
prefix through the block table: the prefix in whole tiles and one cut at its end (every new token sees
all of it), then the new tokens in tiles every row of the query tile sees in full, then the few along
the diagonal with the causal mask. Without them (or in float32) every key comes through the cache: full
tiles, then the diagonal ones.
"""

# Triton kernels: branches on constexprs are compile-time choices, kept as statements on purpose.
# ruff: noqa: SIM102, SIM108

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from pagedllm import pdl
from pagedllm.attention.triton.decode import LOG2E


@dataclass(frozen=True, slots=True)
class PrefillLaunch:
    """Tile shape and pipeline depth; ``None`` fields take the per-shape default."""

    block_m: int | None = None  # rows per tile: query tokens x padded group
    block_n: int | None = None  # keys per tile
    num_warps: int | None = None
    num_stages: int | None = None
    search_chunk: int | None = None  # sequence starts read at once by the tile -> sequence search
    tma: bool | None = None  # the step's K/V through TMA descriptors; None: TMA_MIN_HEAD_DIM and up
    warp_specialize: bool = False  # Triton's automatic warp specialization of the main loop
    max_registers: int | None = None  # a cap on registers a thread (ptxas maxnreg): more programs an SM


SEARCH_CHUNK = 128
# NOTE: TMA by default from head dim 128: there it makes the 1k-token rows 7-14% faster than pointers
# (H100, session 6). At head dim 64 it gains 0-9% on a kernel 2-4x shorter for the same tokens, while each
# launch with descriptors costs the host more (a 1 x 1k Qwen-layout prefill measured 0.058-0.062 ms
# through TMA against 0.021 by pointers in two of four calls: launch-bound; docs/PERFORMANCE.md).
TMA_MIN_HEAD_DIM = 128


@triton.jit
def _scores(q, k, IEEE_DOT: tl.constexpr):
    if IEEE_DOT:
        s = tl.dot(q, tl.trans(k), input_precision="ieee")
    else:
        s = tl.dot(q, tl.trans(k))
    return s


@triton.jit
def _softmax_step(acc, m_i, l_i, s, v, scale_log2, IEEE_DOT: tl.constexpr):
    """The online softmax's update of the running (max, sum, output) by one tile of scores and values."""
    # The scale is folded into the max and into one fused multiply-add per score (scale > 0).
    m_new = tl.maximum(m_i, tl.max(s, 1) * scale_log2)
    p = tl.exp2(s * scale_log2 - m_new[:, None])
    alpha = tl.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if IEEE_DOT:
        acc = tl.dot(p, v, acc, input_precision="ieee")
    else:
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


@triton.jit
def _attend_cached_tile(
    acc,
    m_i,
    l_i,
    q,  # [BLOCK_M, HEAD_DIM_P]
    k_base,  # cache pointer at this KV head
    table,  # this sequence's block table row
    t0,
    q_pos,  # [BLOCK_M] absolute position of each row's token
    kv_end,  # keys at or past kv_end are not read
    scale_log2,
    stride_ckv,
    stride_cb,
    stride_ct,
    d,
    d_ok,
    MASKED: tl.constexpr,  # the tile may cross kv_end
    CAUSAL: tl.constexpr,  # the tile may hold keys after some row's own position
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    IEEE_DOT: tl.constexpr,
):
    """Keys t0 .. t0 + BLOCK_N read from the paged cache through the block table."""
    t = t0 + tl.arange(0, BLOCK_N)
    if BLOCK_N <= BLOCK_SIZE:
        block = tl.load(table + t0 // BLOCK_SIZE).to(tl.int64)
    else:
        block = tl.load(table + t // BLOCK_SIZE, mask=t < kv_end, other=0).to(tl.int64)
    row = block * stride_cb + (t % BLOCK_SIZE) * stride_ct
    ptrs = k_base + row[:, None] + d[None, :]
    # NOTE: no mask at all where none is needed: a mask along head_dim can cost the 16-byte loads.
    if MASKED:
        kv_mask = (t < kv_end)[:, None] & d_ok[None, :]
    else:
        kv_mask = (t >= 0)[:, None] & d_ok[None, :]
    if MASKED or HEAD_DIM_P != HEAD_DIM:
        k = tl.load(ptrs, mask=kv_mask, other=0.0)
    else:
        k = tl.load(ptrs)
    s = _scores(q, k, IEEE_DOT)
    if CAUSAL:
        s = tl.where((t[None, :] <= q_pos[:, None]) & (t < kv_end)[None, :], s, float("-inf"))
    elif MASKED:
        s = tl.where((t < kv_end)[None, :], s, float("-inf"))
    if MASKED or HEAD_DIM_P != HEAD_DIM:
        v = tl.load(ptrs + stride_ckv, mask=kv_mask, other=0.0)
    else:
        v = tl.load(ptrs + stride_ckv)
    return _softmax_step(acc, m_i, l_i, s, v, scale_log2, IEEE_DOT)


@triton.jit
def _load_step_rows(
    src,  # a pointer at (the sequence's first new token, this KV head), or a TMA descriptor
    row,  # TMA only: the descriptor row of the tile's first key
    col,  # TMA only: the descriptor column of this KV head
    j,  # [BLOCK_N] the tile's keys, as indices among the sequence's new tokens
    query_len,
    stride_t,
    d,
    d_ok,
    MASKED: tl.constexpr,  # the tile may reach past the sequence's last new token
    TMA: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
):
    """One tile of the step's K or V rows."""
    if TMA:
        rows = src.load([row, col])
    else:
        ptrs = src + j.to(tl.int64)[:, None] * stride_t + d[None, :]
        if MASKED or HEAD_DIM_P != HEAD_DIM:
            rows = tl.load(ptrs, mask=(j < query_len)[:, None] & d_ok[None, :], other=0.0)
        else:
            rows = tl.load(ptrs)
    return rows


@triton.jit
def _attend_new_tile(
    acc,
    m_i,
    l_i,
    q,  # [BLOCK_M, HEAD_DIM_P]
    key_src,  # the step's keys: a pointer at (first token of the sequence, this KV head), or a TMA descriptor
    value_src,
    desc_row,  # TMA only: the descriptor row of the sequence's first new token
    desc_col,  # TMA only: the descriptor column of this KV head
    j0,  # index of the tile's first key among the sequence's new tokens
    q_idx,  # [BLOCK_M] each row's token index among the new tokens
    query_len,
    scale_log2,
    stride_kt,
    stride_vt,
    d,
    d_ok,
    CAUSAL: tl.constexpr,
    TMA: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
    BLOCK_N: tl.constexpr,
    IEEE_DOT: tl.constexpr,
    PLAIN: tl.constexpr,
):
    """Keys j0 .. j0 + BLOCK_N of this step's new tokens, read from the step's contiguous K/V (the same
    values the cache holds, without a block-table lookup per key)."""
    j = j0 + tl.arange(0, BLOCK_N)
    # A tile on the diagonal may reach past the sequence. By pointers those rows are not loaded. Through
    # TMA the box would read the next sequence's rows, whose values P @ V multiplies by zero: a NaN if one
    # is inf (an overflowed neighbour). So the box is shifted back to end at the sequence's last token, and
    # keys b0 .. j0 - 1, already attended in full tiles, are masked with the causal ones. Only a sequence
    # shorter than a tile still reads other sequences' rows; unless the step is PLAIN (none is), their
    # values are zeroed. That zeroing held 50 registers and cost the 1k-token rows 2-5% (session 20).
    if TMA and CAUSAL:
        b0 = tl.maximum(tl.minimum(j0, query_len - BLOCK_N), -desc_row)
        j = b0 + tl.arange(0, BLOCK_N)
    else:
        b0 = j0
    row = desc_row + b0
    k = _load_step_rows(
        key_src, row, desc_col, j, query_len, stride_kt, d, d_ok, CAUSAL, TMA, HEAD_DIM, HEAD_DIM_P
    )
    s = _scores(q, k, IEEE_DOT)
    if TMA and CAUSAL:
        # j0 <= j <= q_idx in one unsigned compare a score: j - j0 < max(q_idx - j0 + 1, 0), where keys
        # before j0 wrap to values above any bound. Two compares and an and cost the Llama layout's
        # prefill 2-6% (with the reciprocal below; session 22).
        bound = tl.maximum(q_idx - j0 + 1, 0).to(tl.uint32)
        s = tl.where((j - j0).to(tl.uint32)[None, :] < bound[:, None], s, float("-inf"))
    elif CAUSAL:
        s = tl.where(j[None, :] <= q_idx[:, None], s, float("-inf"))
    v = _load_step_rows(
        value_src, row, desc_col, j, query_len, stride_vt, d, d_ok, CAUSAL, TMA, HEAD_DIM, HEAD_DIM_P
    )
    if TMA and CAUSAL and not PLAIN:
        v = tl.where(((j >= 0) & (j < query_len))[:, None], v, 0.0)
    return _softmax_step(acc, m_i, l_i, s, v, scale_log2, IEEE_DOT)


# NOTE: Triton compiles a variant per value class of an int argument (== 1, divisible by 16, other);
# the arguments that change from step to step must not multiply the variants, or a serving step meets
# a new one (a compile of ~1 s) long after the warm-up. The strides of the query, output, cache and the
# step's K/V are fixed for a model and stay specialized.
@triton.jit(do_not_specialize=["num_seqs", "stride_bt"])
def _prefill_kernel(
    out_ptr,  # [num_tokens, num_heads, head_dim]
    query_ptr,  # [num_tokens, num_heads, head_dim]
    cache_ptr,  # [2, num_blocks, block_size, num_kv_heads, head_dim] (any strides, head_dim contiguous)
    key_src,  # NEW_FROM_STEP: the step's keys [num_tokens, num_kv_heads, head_dim] (TMA: a descriptor)
    value_src,
    block_tables_ptr,  # [num_seqs, max_blocks_per_seq] int32
    seq_lens_ptr,  # [num_seqs] int32
    query_start_loc_ptr,  # [num_seqs + 1] int32
    scale_log2,  # softmax scale * log2(e)
    num_seqs,
    stride_qt,
    stride_qh,
    stride_ot,
    stride_oh,
    stride_ckv,
    stride_cb,
    stride_ct,
    stride_ch,
    stride_bt,
    stride_kt,
    stride_kh,
    stride_vt,
    stride_vh,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_Q: tl.constexpr,  # new tokens per tile: BLOCK_Q * GROUP <= BLOCK_M rows in use
    BLOCK_M: tl.constexpr,  # rows per tile, a power of two
    BLOCK_N: tl.constexpr,
    SKIP_DECODES: tl.constexpr,  # sequences with one new token are left to the decode kernel
    IEEE_DOT: tl.constexpr,
    SEARCH_CHUNK: tl.constexpr,  # sequence starts read per step of the tile -> sequence search
    NEW_FROM_STEP: tl.constexpr,  # new tokens' K/V from key_src/value_src, only the cached prefix paged
    TMA: tl.constexpr,  # key_src/value_src are TMA descriptors over [num_tokens, num_kv_heads * head_dim]
    WARP_SPECIALIZE: tl.constexpr,
    # NEW_FROM_STEP: no sequence attended has cached tokens nor (TMA) fewer new tokens than BLOCK_N
    PLAIN: tl.constexpr,
):
    tile = tl.program_id(0)
    kv_head = tl.program_id(1)

    # Sequence i owns tiles [first(i), first(i + 1)) with first(i) = query_start_loc[i] // BLOCK_Q + i:
    # seq = how many sequences start at or before this tile, minus one. Counted SEARCH_CHUNK starts at a
    # time (one load for up to SEARCH_CHUNK sequences, instead of log2(num_seqs) dependent loads of a
    # binary search: a short program spends a tenth of its time otherwise).
    c = tl.arange(0, SEARCH_CHUNK)
    count = num_seqs * 0
    for c0 in tl.range(0, num_seqs, SEARCH_CHUNK):
        i = c0 + c
        first = tl.load(query_start_loc_ptr + i, mask=i < num_seqs, other=0) // BLOCK_Q + i
        count += tl.sum(((first <= tile) & (i < num_seqs)).to(tl.int32), 0)
    seq = count - 1
    q_start = tl.load(query_start_loc_ptr + seq)
    query_len = tl.load(query_start_loc_ptr + seq + 1) - q_start
    local = tile - (q_start // BLOCK_Q + seq)
    num_tiles = tl.cdiv(query_len, BLOCK_Q)
    if local >= num_tiles:
        return
    # NOTE: a sequence's last tokens see the most keys: their tiles go first, so the causal tail is short.
    q_off = (num_tiles - 1 - local) * BLOCK_Q
    if SKIP_DECODES:
        if query_len == 1:
            return
    seq_len = tl.load(seq_lens_ptr + seq)
    num_cached = seq_len - query_len

    r = tl.arange(0, BLOCK_M)
    # NOTE: rows are packed (token, head) pairs with no padding per token (a group of 7 fills 126 of
    # 128 rows, not 112 as padded to 8); the rows past BLOCK_Q * GROUP are masked.
    q_idx = q_off + r // GROUP  # [BLOCK_M] index among this sequence's new tokens
    head = kv_head * GROUP + r % GROUP
    d = tl.arange(0, HEAD_DIM_P)
    d_ok = d < HEAD_DIM
    row_ok = (q_idx < query_len) & (r < BLOCK_Q * GROUP)
    q_pos = num_cached + q_idx
    token = (q_start + q_idx).to(tl.int64)
    io_mask = row_ok[:, None] & d_ok[None, :]
    q = tl.load(
        query_ptr + token[:, None] * stride_qt + head[:, None] * stride_qh + d[None, :],
        mask=io_mask,
        other=0.0,
    )
    if not IEEE_DOT:
        q = q.to(cache_ptr.dtype.element_ty)

    k_base = cache_ptr + kv_head * stride_ch
    table = block_tables_ptr + seq.to(tl.int64) * stride_bt
    m_i = tl.full([BLOCK_M], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM_P], dtype=tl.float32)

    if NEW_FROM_STEP:
        # NOTE: compiled out where no sequence has cached tokens (PLAIN): even with no iteration to run,
        # these two loops held 60 registers and cost the Llama layout's 16 x 1k 7% (session 20).
        if not PLAIN:
            # The cached prefix, every key visible to every row: whole tiles, then one cut at num_cached.
            cached_full = (num_cached // BLOCK_N) * BLOCK_N
            for t0 in tl.range(0, cached_full, BLOCK_N):
                acc, m_i, l_i = _attend_cached_tile(
                    acc, m_i, l_i, q, k_base, table, t0, q_pos, num_cached, scale_log2, stride_ckv,
                    stride_cb, stride_ct, d, d_ok, False, False, HEAD_DIM, HEAD_DIM_P, BLOCK_SIZE, BLOCK_N,
                    IEEE_DOT,
                )  # fmt: skip
            if cached_full < num_cached:
                acc, m_i, l_i = _attend_cached_tile(
                    acc, m_i, l_i, q, k_base, table, cached_full, q_pos, num_cached, scale_log2,
                    stride_ckv, stride_cb, stride_ct, d, d_ok, True, False, HEAD_DIM, HEAD_DIM_P,
                    BLOCK_SIZE, BLOCK_N, IEEE_DOT,
                )  # fmt: skip
        # The new tokens 0 .. q_off are visible to every row of the tile, the rest causally.
        if TMA:
            key_at = key_src
            value_at = value_src
        else:
            key_at = key_src + q_start.to(tl.int64) * stride_kt + kv_head * stride_kh
            value_at = value_src + q_start.to(tl.int64) * stride_vt + kv_head * stride_vh
        new_full = ((q_off + 1) // BLOCK_N) * BLOCK_N
        new_end = tl.minimum(query_len, q_off + BLOCK_Q)
        for j0 in tl.range(0, new_full, BLOCK_N, warp_specialize=WARP_SPECIALIZE):
            acc, m_i, l_i = _attend_new_tile(
                acc, m_i, l_i, q, key_at, value_at, q_start, kv_head * HEAD_DIM, j0, q_idx, query_len,
                scale_log2, stride_kt, stride_vt, d, d_ok, False, TMA, HEAD_DIM, HEAD_DIM_P, BLOCK_N,
                IEEE_DOT, PLAIN,
            )  # fmt: skip
        for j0 in tl.range(new_full, new_end, BLOCK_N):
            acc, m_i, l_i = _attend_new_tile(
                acc, m_i, l_i, q, key_at, value_at, q_start, kv_head * HEAD_DIM, j0, q_idx, query_len,
                scale_log2, stride_kt, stride_vt, d, d_ok, True, TMA, HEAD_DIM, HEAD_DIM_P, BLOCK_N,
                IEEE_DOT, PLAIN,
            )  # fmt: skip
    else:
        # Everything through the cache. Keys 0 .. num_cached + q_off are visible to every row.
        kv_end = tl.minimum(seq_len, num_cached + q_off + BLOCK_Q)
        full_end = ((num_cached + q_off + 1) // BLOCK_N) * BLOCK_N
        for t0 in tl.range(0, full_end, BLOCK_N):
            acc, m_i, l_i = _attend_cached_tile(
                acc, m_i, l_i, q, k_base, table, t0, q_pos, kv_end, scale_log2, stride_ckv, stride_cb,
                stride_ct, d, d_ok, False, False, HEAD_DIM, HEAD_DIM_P, BLOCK_SIZE, BLOCK_N, IEEE_DOT,
            )  # fmt: skip
        for t0 in tl.range(full_end, kv_end, BLOCK_N):
            acc, m_i, l_i = _attend_cached_tile(
                acc, m_i, l_i, q, k_base, table, t0, q_pos, kv_end, scale_log2, stride_ckv, stride_cb,
                stride_ct, d, d_ok, True, True, HEAD_DIM, HEAD_DIM_P, BLOCK_SIZE, BLOCK_N, IEEE_DOT,
            )  # fmt: skip

    # A reciprocal a row, then a multiply an element: the division an element compiled to three
    # multiplies and a select an element beside the reciprocals (session 22's SASS, Llama layout).
    out = acc * (1.0 / l_i)[:, None]
    dst = out_ptr + token[:, None] * stride_ot + head[:, None] * stride_oh + d[None, :]
    tl.store(dst, out.to(out_ptr.dtype.element_ty), mask=io_mask)


def default_prefill_launch(head_dim: int, element_size: int, source: str) -> tuple[int, int, int, int]:
    """(block_m, block_n, num_warps, num_stages) by where the new tokens' K/V come from (``"cache"``,
    ``"pointers"``: the step's K/V, ``"tma"``: the same through TMA descriptors), from the H100 sweeps
    (bf16; benchmarks/gpu/issue5_sweep.py, then benchmarks/gpu/session6_prefill.py, sets a-d):
    - TMA, head dim 128: 64-row tiles, 4 warps, three stages: two programs per SM hide each other's
      fixed costs, 6-12% faster than 128-row tiles on 1k-token sequences, 9-11% slower on 16 x 4k and
      1 x 16k (yet within 1.25x of SDPA there).
    - the step's K/V otherwise: 64-key tiles three stages deep (64-row tiles lose here without TMA).
    - all through the cache: 128-key tiles (head dim 128), two stages; three stages of 64 keys run the
      paged loads 13-18% slower on the rows of 4k tokens and more.
    float32 tiles are halved to fit shared memory."""
    if element_size > 2:
        return (128, 64, 8, 2) if head_dim <= 64 else (64, 64, 4, 2) if head_dim <= 128 else (64, 32, 4, 2)
    if head_dim > 128:
        return 64, 32, 4, 2
    if source == "cache":
        return (128, 64, 8, 2) if head_dim <= 64 else (128, 128, 8, 2)
    if source == "tma" and head_dim > 64:
        return 64, 64, 4, 3
    return 128, 64, 8, 3


def tma_applies(key: torch.Tensor, value: torch.Tensor) -> bool:
    """TMA descriptors over the step's K/V as [num_tokens, num_kv_heads * head_dim]: Hopper or later (or
    the interpreter), a power-of-two head dim, heads side by side and 16-byte aligned rows."""
    if not (_interpreting() or (key.is_cuda and pdl.hopper_or_later(key.device.index))):
        return False
    head_dim = key.shape[2]
    return (
        all(
            t.stride(2) == 1
            and t.stride(1) == head_dim
            and (t.stride(0) * t.element_size()) % 16 == 0
            and t.data_ptr() % 16 == 0
            for t in (key, value)
        )
        and head_dim == triton.next_power_of_2(head_dim)
        and head_dim * key.element_size() >= 16
    )


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def paged_prefill_attention(
    out: torch.Tensor,  # [num_tokens, num_heads, head_dim], written in place
    query: torch.Tensor,  # [num_tokens, num_heads, head_dim]
    kv_cache: torch.Tensor,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
    block_tables: torch.Tensor,  # [num_seqs, max_blocks_per_seq] int32
    seq_lens: torch.Tensor,  # [num_seqs] int32
    query_start_loc: torch.Tensor,  # [num_seqs + 1] int32
    scale: float,
    *,
    key: torch.Tensor | None = None,  # [num_tokens, num_kv_heads, head_dim]: this step's new K, if at hand
    value: torch.Tensor | None = None,
    skip_decodes: bool = False,
    cached_prefix: bool = True,
    shortest_query: int | None = None,
    launch: PrefillLaunch = PrefillLaunch(),
) -> None:
    """Causal attention of every new token over its sequence's context (cached + new).

    With ``key``/``value`` (the values the step wrote into the cache) the new tokens' K/V are read from
    them, contiguous, and only the cached prefix through the block table; without (or in float32), all
    from the cache. Two facts about the sequences the kernel attends (decodes aside with
    ``skip_decodes``), where the caller knows them, let it run a faster variant; a wrong one gives wrong
    outputs. Where none has cached tokens (``cached_prefix=False``: a plain prefill) and, through TMA,
    every one has at least a key tile of new tokens (``shortest_query``, the fewest any has), the kernel
    has no loop over the cache and zeroes no other sequence's values. One variant for that case and
    one for all others keeps the variants to compile at start-up (kernel_warmup) to two more."""
    num_tokens, num_heads, head_dim = query.shape
    num_seqs = seq_lens.shape[0]
    num_kv_heads = kv_cache.shape[3]
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} is not a multiple of num_kv_heads={num_kv_heads}")
    if (key is None) != (value is None):
        raise ValueError("give both key and value, or neither")
    if key is not None and value is not None:
        expected = (num_tokens, num_kv_heads, head_dim)
        if tuple(key.shape) != expected or tuple(value.shape) != expected:
            raise ValueError(
                f"key {tuple(key.shape)} and value {tuple(value.shape)} must both be {expected} "
                "(num_tokens, num_kv_heads, head_dim)"
            )
        if launch.tma and not tma_applies(key, value):
            raise ValueError(
                "tma=True needs Hopper or later, a power-of-two head dim, K/V rows of heads side by side "
                "and 16-byte aligned rows"
            )
    if num_tokens == 0:
        return
    if query.dtype == torch.float32:
        # NOTE: float32 (exact IEEE dots; a correctness mode) reads every key through the cache: its
        # kernel with the two extra loops takes ~2.5x as long to compile (36 s against 14 s on 2 cores).
        key = value = None
    group = num_heads // num_kv_heads
    use_tma = False
    if key is not None and value is not None:
        if launch.tma is not None:
            use_tma = launch.tma
        else:
            use_tma = head_dim >= TMA_MIN_HEAD_DIM and tma_applies(key, value)
    source = "cache" if key is None else "tma" if use_tma else "pointers"
    defaults = default_prefill_launch(head_dim, kv_cache.element_size(), source)
    block_m, block_n, num_warps, num_stages = defaults
    block_m = launch.block_m or block_m
    block_n = launch.block_n or block_n
    num_warps = launch.num_warps or num_warps
    num_stages = launch.num_stages or num_stages
    # NOTE: tl.dot needs at least 16 rows; a group wider than the tile gets a wider tile.
    block_q = max(1, block_m // group)
    block_m = max(16, triton.next_power_of_2(block_q * group))
    key_src: torch.Tensor | TensorDescriptor | None = key
    value_src: torch.Tensor | TensorDescriptor | None = value
    if use_tma and key is not None and value is not None:
        key_src, value_src = (
            TensorDescriptor(t, [num_tokens, num_kv_heads * head_dim], [t.stride(0), 1], [block_n, head_dim])
            for t in (key, value)
        )
    step_strides = (0, 0, 0, 0) if key is None or value is None else (*key.stride()[:2], *value.stride()[:2])
    grid = (num_tokens // block_q + num_seqs, num_kv_heads)
    _prefill_kernel[grid](
        out,
        query,
        kv_cache,
        key_src,
        value_src,
        block_tables,
        seq_lens,
        query_start_loc,
        scale * LOG2E,
        num_seqs,
        query.stride(0),
        query.stride(1),
        out.stride(0),
        out.stride(1),
        kv_cache.stride(0),
        kv_cache.stride(1),
        kv_cache.stride(2),
        kv_cache.stride(3),
        block_tables.stride(0),
        *step_strides,
        GROUP=group,
        HEAD_DIM=head_dim,
        HEAD_DIM_P=triton.next_power_of_2(head_dim),
        BLOCK_SIZE=kv_cache.shape[2],
        BLOCK_Q=block_q,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        SKIP_DECODES=skip_decodes,
        IEEE_DOT=query.dtype == torch.float32,
        SEARCH_CHUNK=launch.search_chunk or SEARCH_CHUNK,
        NEW_FROM_STEP=key is not None,
        TMA=use_tma,
        WARP_SPECIALIZE=launch.warp_specialize,
        PLAIN=(
            key is not None
            and not cached_prefix
            and (not use_tma or (shortest_query is not None and shortest_query >= block_n))
        ),
        num_warps=num_warps,
        num_stages=num_stages,
        **({} if launch.max_registers is None else {"maxnreg": launch.max_registers}),
    )
