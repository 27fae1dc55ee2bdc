"""Paged decode attention: one query token per sequence, split over the context (flash-decoding).

Pass 1 runs one program per (sequence, KV head, split), or per (sequence, group of KV heads, split)
where a token's K/V row for all KV heads is short (``choose_decode_plan``: the Qwen2.5-0.5B layout's
2 x 64 dims are read as one 256-byte row instead of two halves by two programs). The program loads the
query heads that share its KV heads (GQA: they are the rows of one small matrix, so each K/V tile is
read once for all of them) and walks its share of the context tile by tile through the block table with
an online softmax. Where one program reads one KV head of <= 64 dims in one split it loads each tile's
block ids a tile ahead, so that the K/V tiles get two shared-memory buffers (``default_decode_launch``).
With one split it writes the output directly; otherwise it writes a normalised partial output and its
log-sum-exp, and the splits of each (sequence, head) are merged in one of two ways:

- fused (few splits, ``FUSED_MERGE_MAX_SPLITS``): each program bumps an atomic counter of its (sequence,
  KV head) after writing its partials; the one that finds it is last merges that group's partials and
  resets the counter to zero, so the next launch finds every counter at zero again. One launch: no
  second kernel's launch gap and ramp-up, which cost a short problem (Qwen layout, 64 x 4k) a few
  percent.
- pass 2 (many splits): a second kernel merges every (sequence, head) in parallel. The first session
  measured the fused merge 2.5x slower at batch 1 x 16k with 33 splits: the last program's merge is a
  serial chain of L2 round trips there.

No host synchronisation: the grid depends only on the batch size, the head count and ``num_splits``;
each program reads its own sequence's length on the device and takes an even share of it. The partial
buffers and the counters are a per-device workspace that only grows; for CUDA-graph capture, run one
eager step at the largest batch (and ``num_splits``) first so that capture never reallocates it.
"""

# Triton kernels: branches on constexprs are compile-time choices, kept as statements on purpose.
# ruff: noqa: SIM102, SIM108

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from pagedllm import pdl

LOG2E = 1.4426950408889634
# Splits shorter than this spend more on the merge than they gain in parallelism.
MIN_TOKENS_PER_SPLIT = 256
MAX_SPLITS = 64
# Up to this many splits the last split of a (sequence, KV head) merges (one launch); above, pass 2 does.
FUSED_MERGE_MAX_SPLITS = 16


@dataclass(frozen=True, slots=True)
class DecodeLaunch:
    """Tile shape and pipeline depth of pass 1; ``None`` fields take the per-shape default."""

    block_n: int | None = None  # context tokens per tile
    num_warps: int | None = None
    num_stages: int | None = None
    fused_merge: bool | None = None  # None: fused when num_splits <= FUSED_MERGE_MAX_SPLITS
    # None: choose_decode_plan's choice where num_splits is None too, else 1; must divide num_kv_heads
    kv_heads_per_program: int | None = None
    # Each tile's block ids loaded one iteration ahead, which gives the K/V tiles two buffers (see the
    # kernel's loop). None: default_decode_launch's choice; either way block_n defaults to the tile for it
    carry_block_ids: bool | None = None


# NOTE: the arguments that change from step to step are not specialized: see _prefill_kernel.
@triton.jit(do_not_specialize=["num_splits", "stride_bt"])
def _decode_split_kernel(
    out_ptr,  # [num_tokens, num_heads, head_dim]
    partial_out_ptr,  # [num_seqs, num_heads, num_splits, HEAD_DIM_P] float32  (unused if SINGLE_SPLIT)
    partial_lse_ptr,  # [num_seqs, num_heads, num_splits] float32, log2 domain
    counters_ptr,  # [num_seqs * num_kv_heads] int32, zero between launches (used if FUSED_MERGE)
    query_ptr,  # [num_tokens, num_heads, head_dim]
    cache_ptr,  # [2, num_blocks, block_size, num_kv_heads, head_dim] (any strides, head_dim contiguous)
    block_tables_ptr,  # [num_seqs, max_blocks_per_seq] int32
    seq_lens_ptr,  # [num_seqs] int32
    query_start_loc_ptr,  # [num_seqs + 1] int32
    scale_log2,  # softmax scale * log2(e)
    num_splits,
    stride_qt,
    stride_qh,
    stride_ot,
    stride_oh,
    stride_ckv,
    stride_cb,
    stride_ct,
    stride_ch,
    stride_bt,
    GROUP: tl.constexpr,  # query heads per KV head
    KV_PER_PROG: tl.constexpr,  # KV heads per program (their query heads are the rows)
    ROWS_P: tl.constexpr,  # GROUP * KV_PER_PROG padded to a power of two >= 16 (the smallest tl.dot)
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,  # tokens per cache block
    BLOCK_N: tl.constexpr,  # tokens per tile
    SINGLE_SPLIT: tl.constexpr,
    FUSED_MERGE: tl.constexpr,  # the last split of each (sequence, KV heads) merges the partials
    SPLITS_P: tl.constexpr,  # num_splits padded to a power of two (FUSED_MERGE)
    DECODES_ONLY: tl.constexpr,  # skip sequences with more than one new token (mixed batches)
    IEEE_DOT: tl.constexpr,  # float32 inputs: exact fp32 dot instead of tf32
    CARRY_IDS: tl.constexpr,  # each tile's block ids are loaded in the iteration before it
    USE_PDL: tl.constexpr,
):
    seq = tl.program_id(0)
    kv_block = tl.program_id(1)  # KV heads kv_block * KV_PER_PROG ... + KV_PER_PROG - 1
    split = tl.program_id(2)
    # The step's metadata is read before the wait (pdl.py): only the query and the K/V come from the
    # kernels before, so the chain of dependent loads after the wait starts at the block table.
    q_row = tl.load(query_start_loc_ptr + seq)
    if DECODES_ONLY:
        if tl.load(query_start_loc_ptr + seq + 1) - q_row != 1:
            return
    seq_len = tl.load(seq_lens_ptr + seq)
    pdl.wait_then_release(USE_PDL)
    # Even shares in whole tiles, so tiles never straddle two splits.
    per_split = tl.cdiv(tl.cdiv(seq_len, num_splits), BLOCK_N) * BLOCK_N
    start = split * per_split
    end = tl.minimum(start + per_split, seq_len)

    # Rows: the program's query heads. Columns: its KV heads' dims side by side, so that with several KV
    # heads a token's K (and V) row is one contiguous read. Each query row is zero outside its own KV
    # head's columns (block diagonal), so Q @ K^T still gives each head its own scores; the columns of
    # P @ V outside a row's own KV head are never stored.
    g = tl.arange(0, ROWS_P)
    c = tl.arange(0, KV_PER_PROG * HEAD_DIM_P)
    n = tl.arange(0, BLOCK_N)
    d = c % HEAD_DIM_P
    c_kv = c // HEAD_DIM_P  # [COLS] KV head of a column, within the program
    head = kv_block * (KV_PER_PROG * GROUP) + g  # [ROWS_P]
    g_ok = g < KV_PER_PROG * GROUP
    d_ok = d < HEAD_DIM
    own_kv = g_ok[:, None] & ((g // GROUP)[:, None] == c_kv[None, :])  # [ROWS_P, COLS]
    own = own_kv & d_ok[None, :]
    k_base = cache_ptr + kv_block * KV_PER_PROG * stride_ch
    col = c_kv * stride_ch + d  # [COLS] offset of a column within a token's row
    table = block_tables_ptr + seq.to(tl.int64) * stride_bt
    if CARRY_IDS:
        ids = tl.load(table + (start + n) // BLOCK_SIZE, mask=start + n < end, other=0)
    q = tl.load(
        query_ptr + q_row.to(tl.int64) * stride_qt + head[:, None] * stride_qh + d[None, :],
        mask=own,
        other=0.0,
    )  # [ROWS_P, COLS]

    m_i = tl.full([ROWS_P], -1.0e30, dtype=tl.float32)  # finite: an empty split must not make NaN
    l_i = tl.zeros([ROWS_P], dtype=tl.float32)
    acc = tl.zeros([ROWS_P, KV_PER_PROG * HEAD_DIM_P], dtype=tl.float32)
    for t0 in tl.range(start, end, BLOCK_N):
        t = t0 + n  # [BLOCK_N] token positions
        t_ok = t < end
        if CARRY_IDS:
            # The ids came in the iteration before, so this tile's K/V addresses wait on no load of this
            # iteration, and Triton gives the K/V tiles two shared-memory buffers: the next tile's copies
            # are in flight while this one computes. Without it there is one buffer, and each tile waits
            # a full DRAM round trip (session 17's SASS).
            block = ids.to(tl.int64)
            ids = tl.load(table + (t + BLOCK_N) // BLOCK_SIZE, mask=t + BLOCK_N < end, other=0)
        elif BLOCK_N <= BLOCK_SIZE:  # the whole tile lies in one block: one block id
            block = tl.load(table + t0 // BLOCK_SIZE).to(tl.int64)
        else:
            block = tl.load(table + t // BLOCK_SIZE, mask=t_ok, other=0).to(tl.int64)
        row = block * stride_cb + (t % BLOCK_SIZE) * stride_ct
        if HEAD_DIM_P != HEAD_DIM:
            kv_mask = t_ok[:, None] & d_ok[None, :]
        else:  # NOTE: no mask along head_dim, which could cost the 16-byte loads
            kv_mask = t_ok[:, None]
        k = tl.load(k_base + row[:, None] + col[None, :], mask=kv_mask, other=0.0)  # [BLOCK_N, COLS]
        if IEEE_DOT:
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
        else:
            s = tl.dot(q.to(k.dtype), tl.trans(k))
        s = tl.where(t_ok[None, :], s * scale_log2, float("-inf"))  # [ROWS_P, BLOCK_N]
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(k_base + stride_ckv + row[:, None] + col[None, :], mask=kv_mask, other=0.0)
        if IEEE_DOT:
            acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    dst = out_ptr + q_row.to(tl.int64) * stride_ot + head[:, None] * stride_oh + d[None, :]
    if SINGLE_SPLIT:
        tl.store(dst, (acc / l_i[:, None]).to(out_ptr.dtype.element_ty), mask=own)
    else:
        has_tokens = l_i > 0.0
        l_safe = tl.where(has_tokens, l_i, 1.0)
        lse = tl.where(has_tokens, m_i + tl.log2(l_safe), float("-inf"))
        num_heads = tl.num_programs(1) * (KV_PER_PROG * GROUP)
        first = (seq.to(tl.int64) * num_heads + head) * num_splits  # [ROWS_P] partial of split 0
        tl.store(partial_lse_ptr + first + split, lse, mask=g_ok)
        # NOTE: the padding dims too (zeros): the merge reads whole HEAD_DIM_P rows.
        tl.store(partial_out_ptr + (first + split)[:, None] * HEAD_DIM_P + d[None, :], acc / l_safe[:, None],
                 mask=own_kv)  # fmt: skip
        if FUSED_MERGE:
            # Every thread's partial stores come before the counter update (bar.sync), and the release
            # half of the atomic publishes them GPU-wide; its acquire half orders the last program's
            # loads after every other split's stores.
            tl.debug_barrier()
            counter = counters_ptr + seq * tl.num_programs(1) + kv_block
            ticket = tl.atomic_add(counter, 1, sem="acq_rel", scope="gpu")
            if ticket == num_splits - 1:
                tl.debug_barrier()
                sp = tl.arange(0, SPLITS_P)
                dm = tl.arange(0, HEAD_DIM_P)
                s_ok = g_ok[:, None] & (sp < num_splits)[None, :]  # [ROWS_P, SPLITS_P]
                part = first[:, None] + sp[None, :]
                # NOTE: .cg (L2, not L1): another program on this SM may have cached a stale line.
                lse_all = tl.load(partial_lse_ptr + part, mask=s_ok, other=-1.0e30, cache_modifier=".cg")
                # Split 0 always holds tokens (seq_len >= 1): the max is finite; empty splits weigh 0.
                weight = tl.exp2(lse_all - tl.max(lse_all, 1)[:, None])
                parts = tl.load(partial_out_ptr + part[:, :, None] * HEAD_DIM_P + dm[None, None, :],
                                mask=s_ok[:, :, None], other=0.0, cache_modifier=".cg")  # fmt: skip
                merged = tl.sum(parts * weight[:, :, None], 1) / tl.sum(weight, 1)[:, None]
                out_mask = g_ok[:, None] & (dm < HEAD_DIM)[None, :]
                tl.store(out_ptr + q_row.to(tl.int64) * stride_ot + head[:, None] * stride_oh + dm[None, :],
                         merged.to(out_ptr.dtype.element_ty), mask=out_mask)  # fmt: skip
                tl.store(counter, 0)  # every other split has counted: ready for the next launch


@triton.jit(do_not_specialize=["num_splits"])
def _merge_splits_kernel(
    out_ptr,  # [num_tokens, num_heads, head_dim]
    partial_out_ptr,  # [num_seqs, num_heads, num_splits, HEAD_DIM_P] float32
    partial_lse_ptr,  # [num_seqs, num_heads, num_splits] float32
    query_start_loc_ptr,  # [num_seqs + 1] int32
    num_splits,
    stride_ot,
    stride_oh,
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_P: tl.constexpr,
    SPLITS_P: tl.constexpr,
    DECODES_ONLY: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    pdl.wait_then_release(USE_PDL)
    seq = tl.program_id(0)
    head = tl.program_id(1)
    q_row = tl.load(query_start_loc_ptr + seq)
    if DECODES_ONLY:
        if tl.load(query_start_loc_ptr + seq + 1) - q_row != 1:
            return
    s = tl.arange(0, SPLITS_P)
    d = tl.arange(0, HEAD_DIM_P)
    s_ok = s < num_splits
    part = (seq.to(tl.int64) * tl.num_programs(1) + head) * num_splits + s
    lse = tl.load(partial_lse_ptr + part, mask=s_ok, other=float("-inf"))
    # NOTE: split 0 always holds tokens (seq_len >= 1), so the max is finite.
    weight = tl.exp2(lse - tl.max(lse, 0))  # [SPLITS_P]
    parts = tl.load(partial_out_ptr + part[:, None] * HEAD_DIM_P + d[None, :], mask=s_ok[:, None], other=0.0)
    out = tl.sum(parts * weight[:, None], 0) / tl.sum(weight, 0)
    tl.store(
        out_ptr + q_row.to(tl.int64) * stride_ot + head * stride_oh + d,
        out.to(out_ptr.dtype.element_ty),
        mask=d < HEAD_DIM,
    )


def choose_num_splits(num_seqs: int, num_kv_heads: int, max_seq_len: int, num_sms: int) -> int:
    """Splits per sequence from host-known values only: enough programs to fill the GPU about twice.

    For CUDA-graph capture, call with the ``max_seq_len`` the graph is captured for (e.g.
    ``max_model_len``) and pass the result as ``num_splits`` on every replay.
    """
    wanted = -(-2 * num_sms // max(1, num_seqs * num_kv_heads))
    by_length = -(-max_seq_len // MIN_TOKENS_PER_SPLIT)
    return max(1, min(wanted, by_length, MAX_SPLITS))


# Several KV heads per program when their dims side by side are at most this many columns (Qwen2.5-0.5B:
# 2 x 64), the standard plan splits anyway, and the joint plan's splits keep this many tokens each.
JOINT_MAX_COLUMNS = 128
JOINT_MIN_TOKENS_PER_SPLIT = 512
PAIR_MIN_PROGRAMS_PER_SM = 4


def choose_decode_plan(
    num_seqs: int, num_kv_heads: int, head_dim: int, max_seq_len: int, num_sms: int
) -> tuple[int, int]:
    """(KV heads per program, splits), from host-known values only (CUDA-graph capture: as for
    ``choose_num_splits``).

    One program per (sequence, KV head) reads that head's half of every token's K/V row (128 of 256
    bytes for the Qwen2.5-0.5B layout); one per sequence for all KV heads reads whole rows and splits
    the context further. H100, graph replays (``benchmarks/results/issue5-kvblock-h100.json``): joint
    0.823-0.826 of copy bandwidth at 64 x 4k against 0.79-0.81, 0.925 against 0.890 at 64 x 16k, 0.777
    against 0.766 at 16 x 16k; but worse with short splits (64 x 1k: 0.587 against 0.611; 16 x 4k: 0.584
    against 0.592) and where the standard plan needs no split (256 x 4k: 0.843 against 0.908).
    """
    splits = choose_num_splits(num_seqs, num_kv_heads, max_seq_len, num_sms)
    head_dim_p = triton.next_power_of_2(head_dim)
    columns = num_kv_heads * head_dim_p
    if num_kv_heads > 1 and columns <= JOINT_MAX_COLUMNS and splits > 1:
        joint = choose_num_splits(num_seqs, 1, max_seq_len, num_sms)
        if joint > 1 and -(-max_seq_len // joint) >= JOINT_MIN_TOKENS_PER_SPLIT:
            return num_kv_heads, joint
    # Two narrow KV heads per program (two 128-byte half rows side by side: one 256-byte read per
    # token) where the halved grid still gives every SM several programs. Llama-3.2-1B layout (8 KV
    # heads of 64) at 256 x 512, H100 graph replays (benchmarks/results/issue6/decode-1b-sweep-h100.json):
    # 0.885 of copy bandwidth against 0.783 (1,024 programs on 132 SMs); at 64 x 512 (256 programs)
    # 0.778 against 0.773, so not taken there.
    if (
        splits == 1
        and num_kv_heads % 2 == 0
        and 2 * head_dim_p <= JOINT_MAX_COLUMNS
        and num_seqs * num_kv_heads // 2 >= PAIR_MIN_PROGRAMS_PER_SM * num_sms
    ):
        return 2, 1
    return 1, splits


class DecodeTiles(NamedTuple):
    """Pass 1's launch where ``DecodeLaunch`` leaves it to the shape."""

    block_n: int
    num_warps: int
    num_stages: int
    carry_block_ids: bool = False


# Tokens per tile where the ids are carried: two 8 KB K/V buffers for a head of 64 dims.
CARRY_BLOCK_N = 32
# Heads of more than 64 dims read 32-token tiles where the grid has more than SHORT_TILES_MIN and at most
# SHORT_TILES_MAX programs an SM (``short_tiles_pay``, ``default_decode_launch``); "0" keeps 64-token
# tiles everywhere (A/B).
SHORT_TILES = os.environ.get("PAGEDLLM_DECODE_SHORT_TILES", "1") != "0"
SHORT_TILES_MIN_PROGRAMS_PER_SM = 3.5
SHORT_TILES_MAX_PROGRAMS_PER_SM = 6.0


def short_tiles_pay(head_dim: int, programs_per_sm: float) -> bool:
    """Whether a head of ``head_dim`` reads 32-token tiles in a launch of ``programs_per_sm`` programs an SM
    (``default_decode_launch`` says where this was measured)."""
    return (
        SHORT_TILES
        and head_dim > 64
        and SHORT_TILES_MIN_PROGRAMS_PER_SM < programs_per_sm <= SHORT_TILES_MAX_PROGRAMS_PER_SM
    )


def default_decode_launch(
    head_dim: int,
    block_size: int,
    kv_per_prog: int = 1,
    single: bool = False,
    carry_ids: bool | None = None,
    short_tiles: bool = False,
) -> DecodeTiles:
    """From the H100 sweeps in benchmarks/results/kernels-sweep-h100.json (CUDA-graph timings, run 2): head
    dim 64 reads 128-token tiles (more bytes in flight per program: 0.81 of copy bandwidth at 64 x 4k
    against 0.76 with 64), head dim 128 reads 64-token tiles (0.91 against 0.87 with 128 at 16 x 4k). Two
    KV heads of 64 per program read 64-token tiles (the same bytes per tile; 0.823 against 0.810 with 128
    tokens at 2 stages, issue5-kvblock-h100.json).

    One KV head of <= 64 dims per program in one split, over blocks shorter than a tile, carries its
    block ids in 32-token tiles: the Llama-3.2-1B decode step at 64 x 512 0.9-1.5% faster on an H100
    (session 18, results/session18/call7-decode.json); this rule in main, 1.4% (session 19,
    results/session19/call2-decode-main-off-kv1st4-kv1s2.json). The Qwen2.5-0.5B layout's one-split rows
    (256 sequences) are equal or 1.6-2.6% faster (results/session19/call3-kernels-{main,off}.json;
    session 11's results/session11/carry-table.json agrees); alone, the 1B layout's kernel was 5-14%
    faster at 64 x 512-576 (session 11).
    Not with splits (16 x 1k 4% slower there) nor head dim 128 (Qwen3-0.6B's steps: equal to 1.8% slower,
    session 18).

    Heads of more than 64 dims read 32-token tiles with ``short_tiles``: where the launch has 3.5-6
    programs an SM (``short_tiles_pay``, which the plan asks). Measured where the engine runs them, in
    whole decode steps' graphs (H100, context ~520, session 29, ``benchmarks/gpu/
    session29_attention_in_step.py``, results/session29/):
    - 3.9 an SM (512 programs: Qwen3-0.6B, the 8B and Qwen2.5-7B at 64 rows, Qwen3-0.6B at 32): the step
      1.0-5.8% faster; Qwen2.5-7B at 128 rows (also 512 programs) equal;
    - 4.8 and 5.8 (Qwen3-0.6B at 80 and 96 rows): 8.8% and 2.9% faster;
    - 2.9 (48 rows): 1.4% slower; 6.8-7.8 (112-128 rows): 4-15% slower; 15.5: equal.
    The 32-token kernel holds 6 programs an SM (80 registers) where the 64-token one holds 4 (124): up to
    ~6 an SM its grid runs in one wave; above, its second wave of longer programs (17 iterations of 32
    tokens against 9 of 64) costs more. Alone, outside the step, the 32-token kernel was slower at 512
    programs (56.5 against 50.6 us at 64 x 512; 1.5% at 64 x 4k); why the step gains there, where both
    fit in one wave, is not known.

    ``carry_ids`` True or False: the caller's choice, with the tile for it."""
    if carry_ids is None:
        carry_ids = kv_per_prog == 1 and head_dim <= 64 and single and block_size < CARRY_BLOCK_N
    if carry_ids:
        return DecodeTiles(CARRY_BLOCK_N, 4, 3, carry_block_ids=True)
    if kv_per_prog > 1 and kv_per_prog * head_dim <= 128:
        return DecodeTiles(64, 4, 3)
    if head_dim <= 64:
        return DecodeTiles(128, 4, 3)
    if short_tiles:
        return DecodeTiles(32, 4, 3)
    if head_dim <= 128:
        return DecodeTiles(64, 4, 3)
    return DecodeTiles(32, 4, 3)


class DecodeVariant(NamedTuple):
    """How a decode launch is split, from host-known values only. Equal variants (``num_splits`` aside:
    it is a runtime argument) run the same compiled kernel; ``compiled`` is what tells them apart."""

    kv_per_prog: int
    num_splits: int
    single: bool  # one split: no partials, no merge
    fused: bool  # the last split merges the partials (else a second kernel does)
    splits_p: int  # num_splits padded to a power of two: a compile-time constant
    short_tiles: bool = False  # heads of more than 64 dims in 32-token tiles (``short_tiles_pay``)

    @property
    def compiled(self) -> tuple[int, bool, bool, int, bool]:
        return self.kv_per_prog, self.single, self.fused, self.splits_p, self.short_tiles


def decode_variant(
    num_seqs: int,
    num_kv_heads: int,
    head_dim: int,
    max_seq_len: int,
    device: torch.device,
    num_splits: int | None = None,
    launch: DecodeLaunch = DecodeLaunch(),
) -> DecodeVariant:
    """The plan ``paged_decode_attention`` launches for such a batch (``num_splits`` and ``launch`` as
    given to it)."""
    return _plan(num_seqs, num_kv_heads, head_dim, max_seq_len, _num_sms(device), num_splits, launch)


# NOTE: cached because an eager step asks once per layer with the same arguments (~15 us of host time
# each: 16-32 times a step); the SM count is an argument so that tests may pretend other GPUs.
@functools.lru_cache(maxsize=4096)
def _plan(
    num_seqs: int,
    num_kv_heads: int,
    head_dim: int,
    max_seq_len: int,
    num_sms: int,
    num_splits: int | None,
    launch: DecodeLaunch,
) -> DecodeVariant:
    if num_splits is None and launch.kv_heads_per_program is None:
        kv_per_prog, num_splits = choose_decode_plan(num_seqs, num_kv_heads, head_dim, max_seq_len, num_sms)
    else:
        kv_per_prog = launch.kv_heads_per_program or 1
    if num_kv_heads % kv_per_prog:
        raise ValueError(f"kv_heads_per_program={kv_per_prog} does not divide num_kv_heads={num_kv_heads}")
    if num_splits is None:
        num_splits = choose_num_splits(num_seqs, num_kv_heads // kv_per_prog, max_seq_len, num_sms)
    single = num_splits == 1
    fused = not single and (
        launch.fused_merge if launch.fused_merge is not None else num_splits <= FUSED_MERGE_MAX_SPLITS
    )
    programs_per_sm = num_seqs * (num_kv_heads // kv_per_prog) * num_splits / num_sms
    short = short_tiles_pay(head_dim, programs_per_sm)
    return DecodeVariant(kv_per_prog, num_splits, single, fused, triton.next_power_of_2(num_splits), short)


def paged_decode_attention(
    out: torch.Tensor,  # [num_tokens, num_heads, head_dim], written in place
    query: torch.Tensor,  # [num_tokens, num_heads, head_dim]
    kv_cache: torch.Tensor,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
    block_tables: torch.Tensor,  # [num_seqs, max_blocks_per_seq] int32
    seq_lens: torch.Tensor,  # [num_seqs] int32
    query_start_loc: torch.Tensor,  # [num_seqs + 1] int32
    max_seq_len: int,
    scale: float,
    *,
    num_splits: int | None = None,
    decodes_only: bool = False,
    launch: DecodeLaunch = DecodeLaunch(),
) -> None:
    """Attention of each sequence's single new token over its whole context.

    With ``decodes_only`` sequences with more than one new token are skipped (the prefill kernel
    takes them), so one mixed batch can be split between the two kernels without host work.
    """
    num_seqs = seq_lens.shape[0]
    _, num_heads, head_dim = query.shape
    block_size, num_kv_heads = kv_cache.shape[2], kv_cache.shape[3]
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} is not a multiple of num_kv_heads={num_kv_heads}")
    if num_seqs == 0:
        return
    group = num_heads // num_kv_heads
    variant = decode_variant(num_seqs, num_kv_heads, head_dim, max_seq_len, query.device, num_splits, launch)
    kv_per_prog, num_splits, single, fused, splits_p, short_tiles = variant
    kv_blocks = num_kv_heads // kv_per_prog
    tiles = default_decode_launch(
        head_dim, block_size, kv_per_prog, single, launch.carry_block_ids, short_tiles
    )
    block_n = launch.block_n or tiles.block_n
    num_warps = launch.num_warps or tiles.num_warps
    num_stages = launch.num_stages or tiles.num_stages
    head_dim_p = triton.next_power_of_2(head_dim)
    rows_p = max(16, triton.next_power_of_2(group * kv_per_prog))  # tl.dot needs 16 rows
    partial_out, partial_lse, counters = _workspace(
        query.device,
        0 if single else num_seqs * num_heads * num_splits,
        head_dim_p,
        num_seqs * kv_blocks if fused else 0,
    )
    use_pdl = pdl.enabled(query.device)
    _decode_split_kernel[(num_seqs, kv_blocks, num_splits)](
        out,
        partial_out,
        partial_lse,
        counters,
        query,
        kv_cache,
        block_tables,
        seq_lens,
        query_start_loc,
        scale * LOG2E,
        num_splits,
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
        KV_PER_PROG=kv_per_prog,
        ROWS_P=rows_p,
        HEAD_DIM=head_dim,
        HEAD_DIM_P=head_dim_p,
        BLOCK_SIZE=block_size,
        BLOCK_N=block_n,
        SINGLE_SPLIT=single,
        FUSED_MERGE=fused,
        SPLITS_P=splits_p,
        DECODES_ONLY=decodes_only,
        IEEE_DOT=query.dtype == torch.float32,
        CARRY_IDS=tiles.carry_block_ids,
        num_warps=num_warps,
        num_stages=num_stages,
        **pdl.kernel_args(use_pdl),
    )
    if not single and not fused:
        _merge_splits_kernel[(num_seqs, num_heads)](
            out,
            partial_out,
            partial_lse,
            query_start_loc,
            num_splits,
            out.stride(0),
            out.stride(1),
            HEAD_DIM=head_dim,
            HEAD_DIM_P=head_dim_p,
            SPLITS_P=splits_p,
            DECODES_ONLY=decodes_only,
            # NOTE: from splits_p, not num_splits: a compile option must follow the variant's constants
            # (kernel_warmup compiles one launch per DecodeVariant.compiled).
            num_warps=1 if head_dim_p * splits_p <= 2048 else 4,
            **pdl.kernel_args(use_pdl),
        )


# device -> float32 workspace: [counters (int32 bits) | partial outputs | partial lse]
_WORKSPACES: dict[torch.device, torch.Tensor] = {}
_COUNTER_SLOTS: dict[torch.device, int] = {}  # how many counters the workspace's head holds
MIN_COUNTER_SLOTS = 1 << 14


def _workspace(
    device: torch.device, num_partials: int, head_dim_p: int, num_counters: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(partial outputs [num_partials, head_dim_p], partial lse [num_partials], counters [>= num_counters]
    int32), grown on demand. The counters are zero between launches (the fused merge resets each one it
    uses); one tensor holds all three, so whoever keeps the workspace alive (CUDA graphs) keeps all.

    NOTE: reused by every launch on the device: launches on one stream never overlap.
    """
    partials = _WORKSPACES.get(device)
    slots = _COUNTER_SLOTS.get(device, 0)
    need = slots + num_partials * (head_dim_p + 1)
    if partials is None or partials.numel() < need or slots < num_counters:
        slots = max(slots, MIN_COUNTER_SLOTS, triton.next_power_of_2(max(1, num_counters)))
        need = slots + num_partials * (head_dim_p + 1)
        partials = torch.empty(max(need, 1 << 20), dtype=torch.float32, device=device)
        partials[:slots].view(torch.int32).zero_()
        _WORKSPACES[device] = partials
        _COUNTER_SLOTS[device] = slots
    counters = partials[:slots].view(torch.int32)
    outs = partials[slots : slots + num_partials * head_dim_p].view(num_partials, head_dim_p)
    return outs, partials[slots + num_partials * head_dim_p : need], counters


_SM_COUNTS: dict[int, int] = {}


def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return 4  # the interpreter: a few splits, so CPU tests exercise the merge
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SM_COUNTS:
        _SM_COUNTS[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return _SM_COUNTS[index]
