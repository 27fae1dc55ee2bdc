"""Paged prefill/extend attention: each sequence's new tokens attend causally to its cached blocks and
to each other (plain prefill, chunked prefill, prefix-cache hits; decodes too, as query length 1).

One program per (tile of BLOCK_Q new tokens of one sequence, KV head). The tile's rows are its tokens x
the query heads of the KV head (GQA), so each K/V tile is read once for the whole group. Programs find
their sequence on the device by counting the sequence starts at or before their tile: the grid is an
upper bound (``num_tokens // BLOCK_Q + num_seqs`` tiles) that needs no host knowledge of the lengths.

The key loop has two parts: tiles every row of the query tile may see in full (no mask), then the few
tiles along the diagonal with the causal mask.
"""

# Triton kernels: branches on constexprs are compile-time choices, kept as statements on purpose.
# ruff: noqa: SIM102, SIM108

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from pagedllm.attention.triton.decode import LOG2E


@dataclass(frozen=True, slots=True)
class PrefillLaunch:
    """Tile shape and pipeline depth; ``None`` fields take the per-shape default."""

    block_m: int | None = None  # rows per tile: query tokens x padded group
    block_n: int | None = None  # keys per tile
    num_warps: int | None = None
    num_stages: int | None = None
    search_chunk: int | None = None  # sequence starts read at once by the tile -> sequence search


SEARCH_CHUNK = 128


@triton.jit
def _attend_tile(
    acc,
    m_i,
    l_i,
    q,  # [BLOCK_M, HEAD_DIM_P]
    k_base,  # cache pointer at this KV head
    table,  # this sequence's block table row
    t0,
    q_pos,  # [BLOCK_M] absolute position of each row's token
    kv_end,
    scale_log2,
    stride_ckv,
    stride_cb,
    stride_ct,
    d,
    d_ok,
    MASKED: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    IEEE_DOT: tl.constexpr,
):
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
    if IEEE_DOT:
        s = tl.dot(q, tl.trans(k), input_precision="ieee")
    else:
        s = tl.dot(q, tl.trans(k))
    if MASKED:
        s = tl.where((t[None, :] <= q_pos[:, None]) & (t < kv_end)[None, :], s, float("-inf"))
    # The scale is folded into the max and into one fused multiply-add per score (scale > 0).
    m_new = tl.maximum(m_i, tl.max(s, 1) * scale_log2)
    p = tl.exp2(s * scale_log2 - m_new[:, None])
    alpha = tl.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    if MASKED or HEAD_DIM_P != HEAD_DIM:
        v = tl.load(ptrs + stride_ckv, mask=kv_mask, other=0.0)
    else:
        v = tl.load(ptrs + stride_ckv)
    acc = acc * alpha[:, None]
    if IEEE_DOT:
        acc = tl.dot(p, v, acc, input_precision="ieee")
    else:
        acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


# NOTE: Triton compiles a variant per value class of an int argument (== 1, divisible by 16, other);
# the arguments that change from step to step must not multiply the variants, or a serving step meets
# a new one (a compile of ~1 s) long after the warm-up. The strides of the query, output and cache are
# fixed for a model and stay specialized.
@triton.jit(do_not_specialize=["num_seqs", "stride_bt"])
def _prefill_kernel(
    out_ptr,  # [num_tokens, num_heads, head_dim]
    query_ptr,  # [num_tokens, num_heads, head_dim]
    cache_ptr,  # [2, num_blocks, block_size, num_kv_heads, head_dim] (any strides, head_dim contiguous)
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

    # Keys 0 .. num_cached + q_off are visible to every row of the tile.
    kv_end = tl.minimum(seq_len, num_cached + q_off + BLOCK_Q)
    full_end = ((num_cached + q_off + 1) // BLOCK_N) * BLOCK_N
    for t0 in tl.range(0, full_end, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, q, k_base, table, t0, q_pos, kv_end, scale_log2, stride_ckv, stride_cb,
            stride_ct, d, d_ok, False, HEAD_DIM, HEAD_DIM_P, BLOCK_SIZE, BLOCK_N, IEEE_DOT,
        )  # fmt: skip
    for t0 in tl.range(full_end, kv_end, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, q, k_base, table, t0, q_pos, kv_end, scale_log2, stride_ckv, stride_cb,
            stride_ct, d, d_ok, True, HEAD_DIM, HEAD_DIM_P, BLOCK_SIZE, BLOCK_N, IEEE_DOT,
        )  # fmt: skip

    out = acc / l_i[:, None]
    dst = out_ptr + token[:, None] * stride_ot + head[:, None] * stride_oh + d[None, :]
    tl.store(dst, out.to(out_ptr.dtype.element_ty), mask=io_mask)


def default_prefill_launch(head_dim: int, element_size: int) -> tuple[int, int, int, int]:
    """(block_m, block_n, num_warps, num_stages), from the H100 sweeps (bf16; benchmarks/gpu/issue5_sweep.py):
    head dim 128 takes two stages (1-2% faster than three on the table's shapes); float32 tiles are
    halved to fit shared memory."""
    if element_size > 2:
        return (128, 64, 8, 2) if head_dim <= 64 else (64, 64, 4, 2) if head_dim <= 128 else (64, 32, 4, 2)
    if head_dim <= 64:
        return 128, 64, 8, 2
    if head_dim <= 128:
        return 128, 128, 8, 2
    return 64, 32, 4, 2


def paged_prefill_attention(
    out: torch.Tensor,  # [num_tokens, num_heads, head_dim], written in place
    query: torch.Tensor,  # [num_tokens, num_heads, head_dim]
    kv_cache: torch.Tensor,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
    block_tables: torch.Tensor,  # [num_seqs, max_blocks_per_seq] int32
    seq_lens: torch.Tensor,  # [num_seqs] int32
    query_start_loc: torch.Tensor,  # [num_seqs + 1] int32
    scale: float,
    *,
    skip_decodes: bool = False,
    launch: PrefillLaunch = PrefillLaunch(),
) -> None:
    """Causal attention of every new token over its sequence's context (cached + new)."""
    num_tokens, num_heads, head_dim = query.shape
    num_seqs = seq_lens.shape[0]
    num_kv_heads = kv_cache.shape[3]
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} is not a multiple of num_kv_heads={num_kv_heads}")
    if num_tokens == 0:
        return
    group = num_heads // num_kv_heads
    block_m, block_n, num_warps, num_stages = default_prefill_launch(head_dim, kv_cache.element_size())
    block_m = launch.block_m or block_m
    block_n = launch.block_n or block_n
    num_warps = launch.num_warps or num_warps
    num_stages = launch.num_stages or num_stages
    # NOTE: tl.dot needs at least 16 rows; a group wider than the tile gets a wider tile.
    block_q = max(1, block_m // group)
    block_m = max(16, triton.next_power_of_2(block_q * group))
    grid = (num_tokens // block_q + num_seqs, num_kv_heads)
    _prefill_kernel[grid](
        out,
        query,
        kv_cache,
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
        num_warps=num_warps,
        num_stages=num_stages,
    )
