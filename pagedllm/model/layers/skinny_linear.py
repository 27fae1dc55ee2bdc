"""``y = x W^T (+ b)`` for the few rows of a decode step, in Triton: a weight-streaming matrix product.

A decode step multiplies a few dozen rows by each weight matrix: the product is bound by reading the
weights once, and the rows' tile is reread from L2. Each program owns ``BLOCK_N`` output features (and
``BLOCK_M`` rows) over a ``1 / SPLIT_K`` share of the input features; with several splits each writes a
float32 partial and the last split of a tile to finish (an atomic ticket per tile) adds them up, so
there is no second launch. Programs of the same features and different rows are adjacent in the grid,
so the weight tile they share is read from DRAM once.

On its own it is a little faster than cuBLAS (H100, the Llama-3.2-1B decode linears at 64 rows: 54.1
against 58.4 us a layer, ``benchmarks/results/session11/linears-wide.json``). What it adds is
programmatic dependent launch (``pagedllm.pdl``): it starts while the kernel before it finishes,
prefetches the first tiles of its weights into L2 before waiting for that kernel's output, and lets the
next kernel start the same way. Used for CUDA steps of at most ``MAX_ROWS`` (128) rows where PDL is on
(``maybe_skinny_linear``): up to 64 rows with weight-streaming tiles (``skinny_config``), above with a
matrix product's (``wide_config``), where it wins only through PDL and the fused epilogues.

Up to 64 rows a program loads its x and weight tiles by TMA descriptors (Hopper on; ``SkinnyConfig.tma``):
the hardware computes the addresses that pointer loads compute per thread. On the H100 it took the 1B's
and Qwen3-0.6B's 64-row decode steps 1.1-2.4% faster (session 26). From 65 to 128 rows the plans keep
pointer loads (by TMA, Qwen3-0.6B's 128-row step was 2% slower). From 129 to ``TMA_MAX_ROWS`` (256) rows
matrix-product tiles by TMA (``tma_config``) serve the gated product and small weights, cuBLAS the rest
(``tma_serves``: 1.8-5.3% off the 192- and 256-row steps, session 28).

Two variants end in the element-wise layer that follows, saving its launch: ``gated`` (gate_up, then
SiLU-and-multiply: ``maybe_skinny_silu_and_mul``) and ``rope`` (qkv, then rotary on q and k:
``maybe_skinny_rotary_linear``). On the 1B at 64 rows they took 1.7% and 0.5% off the decode step
(session 12). The rotated launch also stores the step's k and v heads in the paged KV cache
(``SkinnyRope.kv_cache``), in place of attention's K/V write launch: 1.0% off the 1B's 64-row step and
0.5% off the 8B's (session 27), once it releases the next kernel after its loop rather than at its start.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from pagedllm import pdl
from pagedllm.model.layers import fused_ops
from pagedllm.model.layers.pending_norm import PendingNorm, input_rows

# Steps of more rows use cuBLAS (from 192 rows on the wide plans lose to it: session 15, below), or plans
# by TMA for some products (TMA_MAX_ROWS).
MAX_ROWS = int(os.environ.get("PAGEDLLM_SKINNY_MAX_ROWS", "128"))  # 0: never, 64: narrow plans only (A/B)
NARROW_ROWS = 64  # steps of at most this many rows take the weight-streaming plans, larger ones the wide
WIDE_MAX_ROWS = 128  # ... up to this many; above, TMA plans (``tma_config``) where TMA_MAX_ROWS allows
# On GPUs with TMA, steps of WIDE_MAX_ROWS + 1 to TMA_MAX_ROWS rows take plans loaded by TMA
# (``tma_config``) for the products of the kinds in TMA_KINDS ("plain", "producer": a norm hand-over's,
# "gated", "rotated"): the gated product always, the others where their weight has at most TMA_MAX_WEIGHT
# elements; cuBLAS serves the rest (``_max_rows``). TMA_MAX_ROWS 0: cuBLAS above WIDE_MAX_ROWS (A/B).
TMA_MAX_ROWS = int(os.environ.get("PAGEDLLM_SKINNY_TMA_MAX_ROWS", "256"))
TMA_KINDS = frozenset(os.environ.get("PAGEDLLM_SKINNY_TMA_KINDS", "plain,producer,gated").split(","))
TMA_MAX_WEIGHT = 1 << 23
# Plans with ``tma`` load their tiles by TMA where the GPU has it; "0" loads every plan's by pointers (A/B).
TMA_LOADS = os.environ.get("PAGEDLLM_SKINNY_TMA", "1") != "0"
# Weight tiles per program prefetched into L2 before waiting for the previous kernel.
PREFETCH_TILES = int(os.environ.get("PAGEDLLM_SKINNY_PREFETCH", "2"))
_LINE = 64  # bf16/fp16 elements in a 128-byte line: one prefetch each
SMEM_BUDGET = 200 * 1024  # bytes of shared memory a program's pipeline may take (H100: 227 KB a block)


@dataclass(frozen=True, slots=True)
class SkinnyConfig:
    block_m: int
    block_n: int
    block_k: int
    split_k: int = 1
    num_warps: int = 4
    num_stages: int = 4
    # A producer of a hand-over loads its residual tile after the loop instead of before it (``wide_config``)
    late_residual: bool = False
    # x and weight tiles by TMA descriptors where the GPU has them (Hopper on), else by pointers
    tma: bool = False


@dataclass(frozen=True, slots=True)
class SkinnyRope:
    """The rotary embedding a rotated ``skinny_linear`` applies to its output's first ``rotated`` features."""

    positions: torch.Tensor  # [M] int64
    cos_cache: torch.Tensor  # [max_position, head_dim // 2] float32
    sin_cache: torch.Tensor
    head_dim: int
    rotated: int  # a multiple of head_dim: the q and k heads of a qkv projection
    # Where given, the k heads (rotated) and the v heads after them are stored at the step's slots of this
    # paged cache too (``[2, blocks, block_size, kv_heads, head_dim]``, slot -1: nothing), as
    # ``write_kv_cache`` stores them: attention then needs no K/V write launch.
    kv_cache: torch.Tensor | None = None
    slot_mapping: torch.Tensor | None = None  # [M] int64


LINE = tl.constexpr(_LINE)


@triton.jit
def _prefetch_l2(ptrs):
    tl.inline_asm_elementwise(
        "prefetch.global.L2 [$1];\n\tmov.u32 $0, 0;", "=r,l", [ptrs], dtype=tl.int32, is_pure=False, pack=1
    )


# NOTE: the row count changes from step to step: not specialized, so one compile serves every step.
@triton.jit(do_not_specialize=["M"])
def _skinny_linear_kernel(
    x_ptr,  # [M, K]
    w_ptr,  # [N, K]
    x_desc,  # TMA: a descriptor over x, [BLOCK_M, BLOCK_K] boxes
    w_desc,  # TMA: a descriptor over w, [BLOCK_N, BLOCK_K] boxes ([BLOCK_N // 2, BLOCK_K] with ROPE)
    y_ptr,  # [M, N]
    bias_ptr,  # [N] (HAS_BIAS)
    positions_ptr,  # [M] int64 (ROPE)
    cos_ptr,  # [max_position, HALF] float32 (ROPE)
    sin_ptr,
    rotated,  # ROPE: features [0, rotated) are rotated (q and k), the rest (v) stored as they are
    cache_ptr,  # STORE_KV: [2, blocks, CACHE_BLOCK, kv_heads, 2 * HALF], the k and v heads' destination
    slot_ptr,  # STORE_KV: [M] int64, -1 = store nothing
    stride_ckv,
    stride_cb,
    stride_ct,
    stride_ch,
    partial_ptr,  # [SPLIT_K, M, N] float32 (SPLIT_K > 1)
    ticket_ptr,  # [tiles] int32, zero between launches (SPLIT_K > 1)
    residual_ptr,  # [M, N] (NORM_OUT): read, and overwritten with y + residual
    norm_weight_ptr,  # [N] (NORM_OUT): the weight of the norm the next linear applies
    sumsq_out_ptr,  # [cdiv(N, BLOCK_N), M] float32 (NORM_OUT): each tile's sum of squares of its rows
    sumsq_in_ptr,  # [IN_PARTS, M] float32 (NORMED_INPUT): the producer's sums of squares of x's rows
    norm_eps,  # NORMED_INPUT
    M,
    N,
    stride_xm,
    stride_wn,
    stride_ym,
    stride_rm,
    K_SHARE: tl.constexpr,  # input features per split (a model has a few: one compile each)
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    GATED: tl.constexpr,  # w is [2N, K] = [gate; up] and y = silu(x gate^T) * (x up^T) (SPLIT_K 1)
    ROPE: tl.constexpr,  # y's heads of 2 * HALF features rotated by the rows' positions (SPLIT_K 1)
    HALF: tl.constexpr,  # ROPE: half a head
    STORE_KV: tl.constexpr,  # ROPE: the k heads (rotated) and the v heads also go to the cache
    CACHE_BLOCK: tl.constexpr,  # STORE_KV: tokens per cache block
    # Producer of a hand-over (PendingNorm): y + residual into residual, then y = (y + residual) * the next
    # norm's weight, and each row's sum of squares of (y + residual) over the tile (SPLIT_K any).
    NORM_OUT: tl.constexpr,
    # Consumer of a hand-over: x is bf16(h * norm weight); each row of the product is scaled by 1 / rms(h),
    # from the producer's IN_PARTS partial sums of squares (the K_SHARE * SPLIT_K features of h).
    NORMED_INPUT: tl.constexpr,
    IN_PARTS: tl.constexpr,
    IN_PARTS_P: tl.constexpr,  # IN_PARTS padded to a power of two
    LATE_RESIDUAL: tl.constexpr,  # NORM_OUT: the residual tile is loaded after the loop, not before it
    TMA: tl.constexpr,  # x and w tiles by TMA (x_desc, w_desc) instead of pointer loads
    USE_PDL: tl.constexpr,
    PREFETCH_LINES: tl.constexpr,  # 128-byte lines of each weight row prefetched before the wait
):
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    pid_m = pid % num_m  # the row tiles of one weight tile are adjacent: it is read from DRAM once
    rest = pid // num_m
    pid_k = rest % SPLIT_K
    pid_n = rest // SPLIT_K
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    if ROPE:
        # A program owns BLOCK_N // 2 features of a head's first half, then the same features of its
        # second half: the pairs a rotation mixes, side by side in one tile.
        TILE_HALF: tl.constexpr = BLOCK_N // 2
        chunks = HALF // TILE_HALF
        head_start = (pid_n // chunks) * (2 * HALF)
        if TMA:  # one box and one accumulator per half: rn is the first half's features
            w_row = head_start + (pid_n % chunks) * TILE_HALF
            rn = w_row + tl.arange(0, TILE_HALF)
        else:
            r = tl.arange(0, BLOCK_N)
            j = (pid_n % chunks) * TILE_HALF + r % TILE_HALF  # the feature within its half-head
            rn = head_start + j + (r // TILE_HALF) * HALF
    else:
        w_row = pid_n * BLOCK_N  # TMA: the weight box's first row
        rn = w_row + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_ok = rm < M
    n_ok = rn < N
    k0 = pid_k * K_SHARE
    x_ptrs = x_ptr + rm[:, None].to(tl.int64) * stride_xm + (k0 + rk)[None, :]
    w_ptrs = w_ptr + rn[:, None].to(tl.int64) * stride_wn + (k0 + rk)[None, :]
    up_ptrs = w_ptrs + N * stride_wn  # GATED: the up row of each gate row
    if ROPE:  # a step input and a table: read before the wait
        pos = tl.load(positions_ptr + rm, mask=m_ok, other=0)
        half_cols = (pid_n % chunks) * TILE_HALF + tl.arange(0, TILE_HALF)
        cos = tl.load(cos_ptr + pos[:, None] * HALF + half_cols[None, :], mask=m_ok[:, None], other=0.0)
        sin = tl.load(sin_ptr + pos[:, None] * HALF + half_cols[None, :], mask=m_ok[:, None], other=0.0)
        if STORE_KV:
            slot = tl.load(slot_ptr + rm, mask=m_ok, other=-1)
    if NORM_OUT:  # a weight: read before the wait
        norm_w = tl.load(norm_weight_ptr + rn, mask=n_ok, other=0.0).to(tl.float32)
    if USE_PDL:
        if PREFETCH_LINES > 0:  # weights only: no kernel of the step writes them
            lines = tl.arange(0, PREFETCH_LINES)[None, :] * LINE
            rows = tl.minimum(rn, N - 1)[:, None].to(tl.int64) * stride_wn
            _prefetch_l2(w_ptr + rows + k0 + lines)
            if GATED:
                _prefetch_l2(w_ptr + N * stride_wn + rows + k0 + lines)
            if ROPE and TMA:  # the second half's rows
                _prefetch_l2(w_ptr + HALF * stride_wn + rows + k0 + lines)
        tl.extra.cuda.gdc_wait()  # x is the previous kernel's output
        if not STORE_KV:
            tl.extra.cuda.gdc_launch_dependents()
    # What the epilogue reads from the kernels before is loaded here, after the wait, and used after the
    # loop: its latency hides under the loop's instead of adding to the epilogue's (but see LATE_RESIDUAL).
    if NORMED_INPUT:
        parts = tl.arange(0, IN_PARTS_P)
        sumsq = tl.load(sumsq_in_ptr + parts[:, None] * M + rm[None, :],
                        mask=(parts < IN_PARTS)[:, None] & m_ok[None, :], other=0.0)  # fmt: skip
    if NORM_OUT:
        r_ptrs = residual_ptr + rm[:, None].to(tl.int64) * stride_rm + rn[None, :]
        if not LATE_RESIDUAL:
            r = tl.load(r_ptrs, mask=m_ok[:, None] & n_ok[None, :], other=0.0)
    if ROPE and TMA:  # acc: the first half's features (rn), acc_up: the second's (rn + HALF)
        acc = tl.zeros((BLOCK_M, BLOCK_N // 2), dtype=tl.float32)
        acc_up = tl.zeros((BLOCK_M, BLOCK_N // 2), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)  # GATED only
    if TMA:
        for kk in range(0, K_SHARE, BLOCK_K):
            # Rows past M (x) or N (w) come in as zeros: no masks.
            x = x_desc.load([pid_m * BLOCK_M, k0 + kk])
            w = w_desc.load([w_row, k0 + kk])
            acc = tl.dot(x, tl.trans(w), acc)
            if GATED:
                up = w_desc.load([N + w_row, k0 + kk])
                acc_up = tl.dot(x, tl.trans(up), acc_up)
            if ROPE:
                second = w_desc.load([w_row + HALF, k0 + kk])
                acc_up = tl.dot(x, tl.trans(second), acc_up)
    else:
        for _ in range(0, K_SHARE, BLOCK_K):
            x = tl.load(x_ptrs, mask=m_ok[:, None], other=0.0)
            w = tl.load(w_ptrs, mask=n_ok[:, None], other=0.0)
            acc = tl.dot(x, tl.trans(w), acc)
            if GATED:
                up = tl.load(up_ptrs, mask=n_ok[:, None], other=0.0)
                acc_up = tl.dot(x, tl.trans(up), acc_up)
                up_ptrs += BLOCK_K
            x_ptrs += BLOCK_K
            w_ptrs += BLOCK_K
    if USE_PDL and STORE_KV:
        # Released after the loop: released at the start, decode attention (the next kernel) started while
        # this one ran and took 7 us a layer longer (the 1B at 64 rows: session 27, call 6).
        tl.extra.cuda.gdc_launch_dependents()
    out_mask = m_ok[:, None] & n_ok[None, :]
    if SPLIT_K > 1:
        tile = tl.cdiv(N, BLOCK_N) * pid_m + pid_n
        mn = rm[:, None].to(tl.int64) * N + rn[None, :]
        tl.store(partial_ptr + pid_k.to(tl.int64) * M * N + mn, acc, mask=out_mask)
        # Every thread's partial is stored before the ticket (bar.sync); the release half of the atomic
        # publishes it GPU-wide, the acquire half orders the last split's loads after the others' stores.
        tl.debug_barrier()
        ticket = tl.atomic_add(ticket_ptr + tile, 1, sem="acq_rel", scope="gpu")
        if ticket != SPLIT_K - 1:
            return  # the last split to finish writes the tile
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for s in range(SPLIT_K):
            # NOTE: .cg (L2): this SM's L1 may hold a stale line of another split's partial.
            part = partial_ptr + (s * M).to(tl.int64) * N + mn
            acc += tl.load(part, mask=out_mask, other=0.0, cache_modifier=".cg")
        tl.store(ticket_ptr + tile, 0)  # every split has counted: ready for the next launch
    if NORM_OUT:  # noqa: SIM102 (constexpr branches: compile-time choices, kept as statements)
        if LATE_RESIDUAL:  # (only the last split of a tile gets here)
            r = tl.load(r_ptrs, mask=out_mask, other=0.0)
    if NORMED_INPUT:
        inv_rms = fused_ops.inverse_rms(tl.sum(sumsq, 0), K_SHARE * SPLIT_K, norm_eps)
        acc = acc * inv_rms[:, None]
        if GATED or (ROPE and TMA):
            acc_up = acc_up * inv_rms[:, None]
    y_ptrs = y_ptr + rm[:, None].to(tl.int64) * stride_ym + rn[None, :]
    if HAS_BIAS:
        bias = tl.load(bias_ptr + rn, mask=n_ok, other=0.0).to(tl.float32)
        acc += bias[None, :]
    dtype = y_ptr.dtype.element_ty
    if GATED:
        tl.static_assert(SPLIT_K == 1, "the gated product does not split its input")
        if HAS_BIAS:
            acc_up += tl.load(bias_ptr + N + rn, mask=n_ok, other=0.0).to(tl.float32)[None, :]
        # Rounded where the unfused layers round: the projection's outputs, silu, then the product.
        gate = acc.to(dtype).to(tl.float32)
        silu = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
        tl.store(y_ptrs, (silu * acc_up.to(dtype).to(tl.float32)).to(dtype), mask=out_mask)
    elif ROPE:
        tl.static_assert(SPLIT_K == 1, "the rotated product does not split its input")
        # Rounded where the projection and the rotary kernel round: the projection's outputs in the model
        # dtype, then the rotary kernel's own arithmetic.
        if TMA:
            if HAS_BIAS:
                acc_up += tl.load(bias_ptr + HALF + rn, mask=n_ok, other=0.0).to(tl.float32)[None, :]
            a = acc.to(dtype)  # [BLOCK_M, TILE_HALF] each: the first and second half of the head
            b = acc_up.to(dtype)
        else:
            halves = tl.permute(tl.reshape(acc.to(dtype), (BLOCK_M, 2, TILE_HALF)), (0, 2, 1))
            a, b = tl.split(halves)
        if head_start < rotated:  # a q or k head (v heads are stored as they are)
            a, b = fused_ops.rotate_halves(a, b, cos, sin)
        if TMA:
            tl.store(y_ptrs, a, mask=out_mask)
            tl.store(y_ptrs + HALF, b, mask=out_mask)
        else:
            out = tl.reshape(tl.permute(tl.join(a, b), (0, 2, 1)), (BLOCK_M, BLOCK_N))
            tl.store(y_ptrs, out, mask=out_mask)
        if STORE_KV:
            first_k = 2 * rotated - N  # the k heads are as many features as the v heads after them
            if head_start >= first_k:
                is_v = head_start >= rotated
                kv_head = (head_start - tl.where(is_v, rotated, first_k)) // (2 * HALF)
                row = (slot // CACHE_BLOCK) * stride_cb + (slot % CACHE_BLOCK) * stride_ct  # [BLOCK_M]
                dst = cache_ptr + is_v.to(tl.int64) * stride_ckv + kv_head * stride_ch
                dst = dst + row[:, None] + half_cols[None, :]
                stored = (m_ok & (slot >= 0))[:, None] & (half_cols < HALF)[None, :]
                tl.store(dst, a.to(cache_ptr.dtype.element_ty), mask=stored)
                tl.store(dst + HALF, b.to(cache_ptr.dtype.element_ty), mask=stored)
    elif NORM_OUT:
        # Rounded where the unfused layers round: the projection's output, then the residual add (as
        # _rms_norm_kernel adds); the sums of squares are of the rounded sum, which the norm would read.
        h = (acc.to(dtype).to(tl.float32) + r.to(tl.float32)).to(dtype)
        tl.store(r_ptrs, h, mask=out_mask)
        h32 = h.to(tl.float32)  # zero outside the tile's rows and features: they add nothing
        tl.store(sumsq_out_ptr + pid_n * M + rm, tl.sum(h32 * h32, 1), mask=m_ok)
        tl.store(y_ptrs, (h32 * norm_w[None, :]).to(dtype), mask=out_mask)
    else:
        tl.store(y_ptrs, acc.to(dtype), mask=out_mask)


_WORKSPACES: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
# Outgrown workspaces, kept: a CUDA graph captured before the growth still writes to its own.
_OUTGROWN: list[tuple[torch.Tensor, torch.Tensor]] = []


def _workspace(device: torch.device, partial_elems: int, tickets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(float32 partials, int32 tickets zeroed), grown on demand, never freed. NOTE: shared by every launch
    on the device (launches on one stream never overlap); callers ask for ``MAX_ROWS`` rows whatever the
    step's count, so the first forward pass sizes it for every later step and graph."""
    partials, counters = _WORKSPACES.get(device, (None, None))
    if partials is None or counters is None:
        partials = torch.empty(0, dtype=torch.float32, device=device)
        counters = torch.zeros(0, dtype=torch.int32, device=device)
    if partials.numel() < partial_elems or counters.numel() < tickets:
        if partials.numel():
            _OUTGROWN.append((partials, counters))
        partial_elems = max(partial_elems, partials.numel(), 1 << 16)
        partials = torch.empty(partial_elems, dtype=torch.float32, device=device)
        counters = torch.zeros(max(tickets, counters.numel(), 1 << 12), dtype=torch.int32, device=device)
        _WORKSPACES[device] = (partials, counters)
    return partials, counters


def _prefetch_lines(k_share: int, block_k: int) -> int:
    """128-byte lines of a weight row to prefetch: PREFETCH_TILES tiles, at most the program's share of
    the row, at least one line; a power of two (an arange's size)."""
    elements = min(PREFETCH_TILES * block_k, k_share)
    if elements <= 0:
        return 0
    lines = max(1, elements // _LINE)
    return 1 << (lines.bit_length() - 1)


# A launch splits the input until it has at least this many programs (H100, 132 SMs: the 1B's qkv runs
# fastest as 96 programs over the whole input, its o_proj as 2 x 64 over halves); 64-feature tiles are
# taken where they still make this many.
MIN_PROGRAMS = 96


@functools.lru_cache(maxsize=1024)
def skinny_config(
    n: int, k: int, smem_budget: int = SMEM_BUDGET, rows: int = NARROW_ROWS
) -> SkinnyConfig | None:
    """The tile plan for ``[rows, k] @ [n, k]^T``, or None where ``k`` does not split into whole tiles.
    Above ``WIDE_MAX_ROWS`` rows: ``tma_config``'s; above ``NARROW_ROWS``: ``wide_config``'s. Up to it:

    About one program per SM, each streaming a contiguous slab of the weights through a deep pipeline.
    From the H100 sweeps of the Llama-3.2-1B decode linears at 64 rows (``benchmarks/gpu/
    session9_linears.py`` and ``session11_linears.py``, which also tried the wide tiles the first left
    out): 128 features per program for gate_up (16k features), 32 for the 2k-3k-feature outputs, the
    input split while a launch has fewer than ``MIN_PROGRAMS`` programs (in two for o_proj and down),
    256-input tiles where shared memory allows, four stages. 64 features per program where that still makes
    ``MIN_PROGRAMS`` programs and 128 would make too few: in the sweep of Qwen3-0.6B's linears
    (``session14_linears.py``), its gate_up (1,024 -> 6,144) took 6.4 us as 96 programs of 64 features
    (gated: 6.7), 8.4 as 192 of 32 (gated: 9.4), which at ~200 KB of shared memory each run in two waves.
    """
    if rows > WIDE_MAX_ROWS:
        return tma_config(n, k, rows, smem_budget)
    if rows > NARROW_ROWS:
        return wide_config(n, k, rows, smem_budget)
    if triton.cdiv(n, 128) >= 120:
        block_n = 128
    elif triton.cdiv(n, 64) >= MIN_PROGRAMS:
        block_n = 64
    elif triton.cdiv(n, 32) >= 64:
        block_n = 32
    else:
        block_n = 16
    split_k = 1
    while triton.cdiv(n, block_n) * split_k < MIN_PROGRAMS and k // (2 * split_k) >= 512 and split_k < 8:
        split_k *= 2
    block_k, num_stages = 256, 4
    # Within the shared memory of one program (the pipeline's x and weight tiles, 2-byte elements).
    while num_stages * (64 + block_n) * block_k * 2 > smem_budget and block_k > 64:
        block_k //= 2
    while num_stages * (64 + block_n) * block_k * 2 > smem_budget and num_stages > 2:
        num_stages -= 1
    while block_k > 32 and k % (split_k * block_k):
        block_k //= 2
    if k % (split_k * block_k) or num_stages * (64 + block_n) * block_k * 2 > smem_budget:
        return None
    # NOTE: 64 rows whatever the step's count: one compiled variant per linear serves every step; the
    # masked rows cost tensor-core work only, which a weight-bound product has to spare.
    return SkinnyConfig(
        64, block_n, block_k, split_k, num_warps=8 if block_n >= 128 else 4, num_stages=num_stages, tma=True
    )


# Wide plans split a 128-row tile's input in two where each half keeps at least this many input features
# (a long loop per program), rather than take 64-row tiles: the 1B's down at 256 rows took 24.2 us that
# way against 27.5; the 8B's down (14,336 inputs) at 128 rows is planned so.
WIDE_SPLIT_MIN_INPUT = 4096


@functools.lru_cache(maxsize=1024)
def wide_config(
    n: int, k: int, rows: int, smem_budget: int = SMEM_BUDGET, weight_tiles: int = 1
) -> SkinnyConfig | None:
    """The tile plan for ``[rows, k] @ [n, k]^T`` for more than ``NARROW_ROWS`` rows, where reading the
    weights once no longer bounds the product alone (at 256 rows a decode linear does about as many
    flops per weight byte as the H100's tensor cores do per DRAM byte): a matrix product's tiles. 64
    features by 128 rows where that makes ``MIN_PROGRAMS`` programs (8 warps, 128-deep input tiles, four
    stages, three for the gated product's two weight tiles), else by 64 rows (4 warps, five stages) with
    the input split for enough programs as in ``skinny_config``, or, over a long input, 128 rows with the
    input halved. Where the input is not split, a producer of a hand-over loads its residual tile after
    the loop. Decode steps of 96 and 128 rows (calls 10-14): the 8B (o_proj a producer over the whole
    input) took 12.55 ms at 128 rows with the producers' residual late, 12.74-12.78 with everything
    early; Qwen3-0.6B (producers over split inputs) 3.19/3.91 with everything early, 3.26/3.98 with the
    producers late; the 1B within 1% either way. ``weight_tiles`` 2: the gated product (``n`` is each
    half's features; no split). None where ``k`` does not split into whole tiles.

    H100 sweeps at 128 rows (the engine's ``MAX_ROWS``) of the Llama-3.2-1B's, Qwen3-0.6B's and
    Llama-3.1-8B's linears (``benchmarks/gpu/session15_linears256.py``, ``benchmarks/results/session15/
    linears256-*-128.json``, 20-60 plans each): these plans were the fastest, or within 0.3 us of it,
    for eleven of the twelve (Qwen3's o_proj plan was not timed; its neighbour was 0.15 us off). Alone,
    most are a little slower than cuBLAS (the 1B's qkv 8.4 us against 7.7, the 8B's o_proj 16.1 against
    15.2), the gated gate_up and the 8B's down faster (90 against cuBLAS's 89 plus the activation, 49
    against 52). What wins is PDL and the fused epilogues: a layer's
    linears and norms chained (``session15_forms.py``) took 1,058-1,061 us for the 1B's 16 at 128 rows
    against cuBLAS's 1,135-1,138. At 256 rows cuBLAS wins for the 1B (qkv 8.9 us against the best plan's
    10.8), and with the norms and rotary in the epilogues its layers took 1,508-1,524 us against
    1,262-1,266, hence ``MAX_ROWS``."""
    block_n = 64
    n_tiles = triton.cdiv(n, block_n)
    block_m, split_k = 128, 1
    tall_tiles = triton.cdiv(rows, 128) * n_tiles
    if tall_tiles < MIN_PROGRAMS:
        splittable = weight_tiles == 1
        if splittable and k // 2 >= WIDE_SPLIT_MIN_INPUT and tall_tiles * 2 >= MIN_PROGRAMS:
            split_k = 2
        else:
            block_m = 64
            while (
                splittable
                and triton.cdiv(rows, 64) * n_tiles * split_k < MIN_PROGRAMS
                and k // (2 * split_k) >= 512
                and split_k < 8
            ):
                split_k *= 2
    if block_m == 128:
        block_k, num_warps, num_stages = 128, 8, 4
    else:
        block_k, num_warps, num_stages = (128 if weight_tiles == 1 else 64), 4, 5

    def smem() -> int:
        return num_stages * (block_m + weight_tiles * block_n) * block_k * 2

    while smem() > smem_budget and num_stages > 3:
        num_stages -= 1
    while smem() > smem_budget and block_k > 64:
        block_k //= 2
    while smem() > smem_budget and num_stages > 2:
        num_stages -= 1
    while block_k > 32 and k % (split_k * block_k):
        block_k //= 2
    if k % (split_k * block_k) or smem() > smem_budget:
        return None
    # NOTE: pointer loads: by TMA, Qwen3-0.6B's 128-row step took 3.94 ms against 3.86 (the 1B's 2.11
    # against 2.16; session 26, call 4)
    return SkinnyConfig(block_m, block_n, block_k, split_k, num_warps, num_stages, late_residual=split_k == 1)


def _tma_plans(spec: str) -> dict[tuple[int, int], tuple[int, ...]]:
    """``PAGEDLLM_SKINNY_TMA_PLANS`` parsed: (weight rows, columns) -> (bm, bn, bk, split, warps, stages)."""
    plans = {}
    for item in filter(None, spec.split(";")):
        shape, _, plan = item.partition("=")
        n, k = (int(v) for v in shape.split("x"))
        plans[n, k] = () if plan == "none" else tuple(int(v) for v in plan.split(","))
    return plans


# Plans for named weights above WIDE_MAX_ROWS rows, for sweeps in whole steps: "NxK=bm,bn,bk,split,warps,
# stages;..." with N the weight's rows (a gated product's both halves) and K its columns; "NxK=none":
# cuBLAS for that weight.
TMA_PLANS = _tma_plans(os.environ.get("PAGEDLLM_SKINNY_TMA_PLANS", ""))


@functools.lru_cache(maxsize=1024)
def tma_config(
    n: int, k: int, rows: int, smem_budget: int = SMEM_BUDGET, weight_tiles: int = 1
) -> SkinnyConfig | None:
    """The plan, x and weight tiles loaded by TMA, for ``[rows, k] @ [n, k]^T`` above ``WIDE_MAX_ROWS``
    rows (``TMA_MAX_ROWS``); ``weight_tiles`` 2: the gated product, ``n`` each half's features.
    ``TMA_PLANS`` names others. None where ``k`` does not split into whole tiles, or ``TMA_PLANS`` says
    cuBLAS.

    From the H100 sweep at 256 rows of the Llama-3.2-1B's and Qwen3-0.6B's linears (``benchmarks/gpu/
    session26_tma_linears.py``, ``benchmarks/results/session26/call1-tma-*.json``, 44 plans each): 64-row
    tiles, 128-deep input tiles and 4 warps, 128 features a program where that still makes
    ``MIN_PROGRAMS`` programs (four stages), else 64 (six); the gated product 128 x 128 tiles, 64-deep, 8
    warps, where that makes ``MIN_PROGRAMS``, else 64 x 64 (4 warps), four stages. Alone, us against
    cuBLAS (the gated product: cuBLAS then the activation kernel): the 1B's gated gate_up 32.7 against
    37.0, o_proj 6.9 / 6.7, qkv 9.4 / 8.6; Qwen3's 9.6 / 9.9, 6.1 / 6.3, 6.7 / 6.3. In whole steps, the
    1B's down split in 2 or 4 (128 x 64, 128 x 128, 256 x 64 tiles) was 0.5-7% slower than on cuBLAS
    (session 28, call 2)."""
    named = TMA_PLANS.get((n * weight_tiles, k))
    if named == ():
        return None
    if named is not None:
        block_m, block_n, block_k, split_k, num_warps, num_stages = named
    elif weight_tiles == 2:
        wide = triton.cdiv(rows, 128) * triton.cdiv(n, 128) >= MIN_PROGRAMS
        block_m, block_n, block_k, num_warps, num_stages = (
            (128, 128, 64, 8, 4) if wide else (64, 64, 64, 4, 4)
        )
        split_k = 1
    else:
        wide = triton.cdiv(rows, 64) * triton.cdiv(n, 128) >= MIN_PROGRAMS
        block_m, block_n, block_k, num_warps, num_stages = (
            (64, 128, 128, 4, 4) if wide else (64, 64, 128, 4, 6)
        )
        split_k = 1

    def smem() -> int:
        return num_stages * (block_m + weight_tiles * block_n) * block_k * 2

    while smem() > smem_budget and num_stages > 2:
        num_stages -= 1
    while block_k > 32 and k % (split_k * block_k):
        block_k //= 2
    if k % (split_k * block_k) or smem() > smem_budget or (weight_tiles == 2 and split_k > 1):
        return None
    return SkinnyConfig(
        block_m, block_n, block_k, split_k, num_warps, num_stages, late_residual=split_k == 1, tma=True
    )


@functools.cache
def _smem_budget(device: torch.device) -> int:
    """SMEM_BUDGET, or less on GPUs with less shared memory a block (consumer Blackwell: ~99 KB)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    optin = torch.cuda.get_device_properties(index).shared_memory_per_block_optin
    return min(SMEM_BUDGET, optin - 16 * 1024)


def maybe_skinny_linear(
    x: torch.Tensor | PendingNorm, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor | None:
    """``F.linear(x, weight, bias)`` by ``skinny_linear`` where it pays (a CUDA step of at most
    ``MAX_ROWS`` rows, or ``TMA_MAX_ROWS`` where ``tma_serves``, in fp16/bf16 on a GPU with PDL), else
    None: the caller uses cuBLAS (and materializes a ``PendingNorm``)."""
    x2 = _skinny_input(x, weight, "plain")
    if x2 is None:
        return None
    rows = plan_rows(input_rows(x2).shape[0])
    config = skinny_config(weight.shape[0], weight.shape[1], _smem_budget(weight.device), rows)
    if config is None:
        return None
    return _as_input_shape(skinny_linear(x2, weight, config, bias=bias), x)


def maybe_skinny_linear_add_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    residual: torch.Tensor,
    norm_weight: torch.Tensor,
    norm_eps: float,
) -> PendingNorm | None:
    """``RMSNorm(F.linear(x, weight, bias) + residual)``, with ``residual`` overwritten by the sum, as
    ``skinny_linear_add_norm`` hands it over to the next linear, where the skinny kernel serves (as
    ``maybe_skinny_linear``) and ``residual`` and ``norm_weight`` fit; else None: the caller runs the
    linear and the norm."""
    x2 = _skinny_input(x, weight, "producer")
    if (
        not isinstance(x2, torch.Tensor)
        or residual.shape != (x2.shape[0], weight.shape[0])
        or residual.dtype != x.dtype
        or residual.stride(1) != 1
        or norm_weight.shape != (weight.shape[0],)
    ):
        return None
    rows = plan_rows(x2.shape[0])
    config = skinny_config(weight.shape[0], weight.shape[1], _smem_budget(weight.device), rows)
    if config is None:
        return None
    return skinny_linear_add_norm(x2, weight, config, residual, norm_weight, norm_eps, bias=bias)


def maybe_skinny_silu_and_mul(
    x: torch.Tensor | PendingNorm, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor | None:
    """``silu(gate) * up`` of ``[gate | up] = F.linear(x, weight, bias)`` in one ``skinny_linear`` launch
    (``gated``) where that kernel serves, else None: the caller runs the projection and the activation.

    One launch fewer per MLP, and the projection's output never goes through memory: at 64 rows the
    Llama-3.2-1B's SiLU-and-multiply, a separate kernel, costs a decode step ~2 us a layer (it waits for
    gate_up to finish and down waits for it)."""
    x2 = _skinny_input(x, weight, "gated")
    if x2 is None or weight.shape[0] % 2:
        return None
    rows = plan_rows(input_rows(x2).shape[0])
    config = gated_skinny_config(weight.shape[0], weight.shape[1], _smem_budget(weight.device), rows)
    if config is None:
        return None
    return _as_input_shape(skinny_linear(x2, weight, config, bias=bias, gated=True), x)


def maybe_skinny_rotary_linear(
    x: torch.Tensor | PendingNorm, weight: torch.Tensor, bias: torch.Tensor | None, rope: SkinnyRope
) -> torch.Tensor | None:
    """``F.linear(x, weight, bias)`` with its first ``rope.rotated`` features rotated by ``rope`` (the q and
    k heads of a fused qkv projection), in one ``skinny_linear`` launch where that kernel serves, else
    None: the caller runs the projection and the rotary embedding.

    At 64 rows the Llama-3.2-1B's rotary kernel costs a decode step ~3-4 us a layer (session 12: it waits
    for qkv to finish and the K/V write waits for it)."""
    x2 = _skinny_input(x, weight, "rotated")
    if x2 is None:
        return None
    rows = plan_rows(input_rows(x2).shape[0])
    config = rotary_skinny_config(
        weight.shape[0], weight.shape[1], rope.head_dim, _smem_budget(weight.device), rows
    )
    if config is None:
        return None
    return _as_input_shape(skinny_linear(x2, weight, config, bias=bias, rope=rope), x)


def _as_input_shape(out: torch.Tensor, x: torch.Tensor | PendingNorm) -> torch.Tensor:
    """``out`` (``[rows, N]``) with ``x``'s leading dimensions (a ``PendingNorm`` is always 2-D)."""
    return out if isinstance(x, PendingNorm) else out.view(*x.shape[:-1], out.shape[-1])


@functools.lru_cache(maxsize=1024)
def gated_skinny_config(
    n: int, k: int, smem_budget: int = SMEM_BUDGET, rows: int = NARROW_ROWS
) -> SkinnyConfig | None:
    """The plan for the gated product of ``n`` weight rows (gate, then up): each program computes
    ``block_n`` features from the gate rows and the same features from the up rows. Up to ``NARROW_ROWS``
    rows that is ``skinny_config(n, k)``'s plan with half-width tiles, so the launch and the weight bytes
    each program streams are the same; above, ``wide_config``'s plan (above ``WIDE_MAX_ROWS``,
    ``tma_config``'s) for the ``n // 2`` output features with both weight tiles in its shared memory.
    None where the plan splits the input (a gated split would have to add both halves' partials before
    the activation) or its half-tiles are narrower than a 16-wide dot."""
    if rows > WIDE_MAX_ROWS:
        return tma_config(n // 2, k, rows, smem_budget, weight_tiles=2)
    if rows > NARROW_ROWS:
        return wide_config(n // 2, k, rows, smem_budget, weight_tiles=2)
    config = skinny_config(n, k, smem_budget)
    if config is None or config.split_k > 1 or config.block_n < 32:
        return None
    return dataclasses.replace(config, block_n=config.block_n // 2)


@functools.lru_cache(maxsize=1024)
def rotary_skinny_config(
    n: int, k: int, head_dim: int, smem_budget: int = SMEM_BUDGET, rows: int = NARROW_ROWS
) -> SkinnyConfig | None:
    """The plan of ``skinny_config(n, k, rows=rows)`` for the rotated product, whose programs each compute
    half their features from one half of a head and the same features of the head's other half. None
    where that plan splits the input or its half-tiles do not tile half a head."""
    config = skinny_config(n, k, smem_budget, rows)
    if config is None or config.split_k > 1 or n % head_dim or head_dim % 2:
        return None
    return config if (head_dim // 2) % (config.block_n // 2) == 0 else None


def plan_rows(rows: int) -> int:
    """The row count a plan is chosen for: ``NARROW_ROWS`` up to it (one plan), else ``rows`` rounded up to
    a multiple of 64 (the wide plans depend on the row tiles only): a few plans serve every step."""
    return NARROW_ROWS if rows <= NARROW_ROWS else -(-rows // 64) * 64


def tma_serves(kind: str, weight_shape: tuple[int, ...]) -> bool:
    """Whether a ``kind`` product of a weight of ``weight_shape`` takes a plan by TMA in steps of
    ``WIDE_MAX_ROWS`` + 1 to ``TMA_MAX_ROWS`` rows (on a GPU with TMA): the gated product always, the
    other ``TMA_KINDS`` where the weight has at most ``TMA_MAX_WEIGHT`` elements or ``TMA_PLANS`` names it.

    H100, whole decode steps at 192 and 256 rows (session 28, ``benchmarks/results/session28/``):
    - the gated product by TMA took every model's step 1.3-2.9% faster than cuBLAS and the activation
      kernel (the 1B's 256-row step 3.13 ms against 3.22, Qwen3-0.6B's 6.84 against 6.95, the 8B's 13.94
      against 14.13);
    - every product by TMA took Qwen3-0.6B's (all its weights small) 4.5-5.5% faster than cuBLAS;
    - but the 1B's 2.8% slower than the gated product alone: its down (16.8M elements) as a producer
      was charged 27.4 us a layer against cuBLAS's 18.2 and its norm's 3.0. With its o_proj and qkv
      (4.2M, 6.3M) by TMA too and down on cuBLAS, it equals the gated product alone. The 8B's qkv by TMA
      is 1.24x cuBLAS (session 26).
    Rotated plans are not in ``TMA_KINDS`` by default: the 1B's rotated qkv in 64-feature tiles was
    charged 15.3-15.8 us against cuBLAS's and the rotary kernel's 12.5."""
    if kind not in TMA_KINDS:
        return False
    n, k = weight_shape
    return kind == "gated" or n * k <= TMA_MAX_WEIGHT or (n, k) in TMA_PLANS


def _max_rows(kind: str, weight: torch.Tensor) -> int:
    """The most rows of a step the skinny kernel serves a ``kind`` product of ``weight`` for: ``MAX_ROWS``,
    or ``TMA_MAX_ROWS`` where ``tma_serves`` says so on a GPU with TMA."""
    if 0 < MAX_ROWS < TMA_MAX_ROWS and tma_serves(kind, tuple(weight.shape)):
        return TMA_MAX_ROWS if pdl.hopper_or_later(weight.device.index) else MAX_ROWS
    return MAX_ROWS


def _skinny_input(
    x: torch.Tensor | PendingNorm, weight: torch.Tensor, kind: str
) -> torch.Tensor | PendingNorm | None:
    """``x`` as ``[rows, K]`` where the skinny kernel may serve ``x @ weight^T``, a ``kind`` product (CUDA,
    fp16/bf16, at most ``_max_rows`` rows, PDL on, both contiguous along K), else None. A ``PendingNorm``
    is its ``weighted`` rows (always 2-D)."""
    rows_of = input_rows(x)
    if (
        not rows_of.is_cuda
        or rows_of.dtype not in (torch.float16, torch.bfloat16)
        or weight.dtype != rows_of.dtype
    ):
        return None
    rows = rows_of.numel() // rows_of.shape[-1] if rows_of.shape[-1] else 0
    if not 0 < rows <= _max_rows(kind, weight) or not pdl.enabled(rows_of.device) or weight.stride(1) != 1:
        return None
    if isinstance(x, PendingNorm):
        return x if x.weighted.stride(1) == 1 else None
    x2 = x.reshape(rows, x.shape[-1])
    return x2 if x2.stride(1) == 1 else None


def skinny_linear(
    x: torch.Tensor | PendingNorm,
    weight: torch.Tensor,
    config: SkinnyConfig,
    *,
    bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    use_pdl: bool | None = None,
    gated: bool = False,
    rope: SkinnyRope | None = None,
) -> torch.Tensor:
    """``x @ weight.T + bias`` for a 2-D ``x`` of few rows (``[M, K]``, last dim contiguous) and ``[N, K]``.
    ``gated``: ``weight`` is ``[2N, K]``, gate rows then up rows, and the result ``silu(gate) * up``
    (``[M, N]``), rounded where the projection and ``SiluAndMul`` round. ``rope``: the output's first
    ``rope.rotated`` features are heads rotated as ``RotaryEmbedding`` rotates them, rounded where it
    rounds. ``x`` a ``PendingNorm``: the product of its norm's output (``x @ weight.T`` scaled row by
    row). ``use_pdl`` None: as ``pdl.enabled`` says for the device."""
    rows = input_rows(x)
    M, K = rows.shape
    N = weight.shape[0] // 2 if gated else weight.shape[0]
    if weight.shape[1] != K:
        raise ValueError(f"x has {K} features, weight {weight.shape[1]}")
    if gated and (weight.shape[0] % 2 or config.split_k > 1):
        raise ValueError(
            f"a gated product needs an even number of weight rows (got {weight.shape[0]}) and split_k 1 "
            f"(got {config.split_k})"
        )
    if rope is not None and (
        gated or config.split_k > 1 or N % rope.head_dim or (rope.head_dim // 2) % (config.block_n // 2)
    ):
        raise ValueError(
            f"a rotated product needs split_k 1 (got {config.split_k}), whole heads (N={N}, head_dim="
            f"{rope.head_dim}) and half-heads of whole tiles (block_n={config.block_n}), and no gate"
        )
    if rope is not None and rope.kv_cache is not None:
        _check_kv_destination(rope, N, M, rows.dtype)
    if isinstance(x, PendingNorm) and (x.sumsq_parts.shape[1:] != (M,) or not x.sumsq_parts.is_contiguous()):
        raise ValueError(f"the norm's sums {tuple(x.sumsq_parts.shape)} are not [parts, {M}] and contiguous")
    if out is None:
        out = torch.empty(M, N, dtype=rows.dtype, device=rows.device)
    _launch(x, weight, config, out, bias, use_pdl, gated=gated, rope=rope)
    return out


def _check_kv_destination(rope: SkinnyRope, n: int, m: int, dtype: torch.dtype) -> None:
    """That ``rope``'s cache holds the k and v heads of an ``n``-feature output of ``m`` rows."""
    cache, slots = rope.kv_cache, rope.slot_mapping
    assert cache is not None
    kv_features = n - rope.rotated
    if (
        slots is None
        or slots.shape != (m,)
        or not fused_ops.is_paged_cache(cache, rope.head_dim)
        or cache.shape[3] * rope.head_dim != kv_features
        or cache.dtype != dtype
        or not 0 < kv_features < rope.rotated
    ):
        raise ValueError(
            f"a K/V store into cache {tuple(cache.shape)} ({cache.dtype}, head_dim contiguous) at slots "
            f"{None if slots is None else tuple(slots.shape)} does not fit {m} rows of {n} features, the "
            f"last {kv_features} of them v heads of {rope.head_dim} ({dtype})"
        )


def skinny_linear_add_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    config: SkinnyConfig,
    residual: torch.Tensor,
    norm_weight: torch.Tensor,
    norm_eps: float,
    *,
    bias: torch.Tensor | None = None,
    use_pdl: bool | None = None,
) -> PendingNorm:
    """``RMSNorm(x @ weight.T + bias + residual)`` (``norm_weight``, ``norm_eps``), with ``residual``
    (``[M, N]``) overwritten by the sum as ``RMSNorm(y, residual)`` does, handed over to the linear that
    reads it (``pagedllm.model.layers.pending_norm``): pass the result as that ``skinny_linear``'s ``x``."""
    M, K = x.shape
    N = weight.shape[0]
    if (
        weight.shape[1] != K
        or residual.shape != (M, N)
        or norm_weight.shape != (N,)
        or residual.stride(1) != 1
    ):
        raise ValueError(
            f"x {tuple(x.shape)}, weight {tuple(weight.shape)}, residual {tuple(residual.shape)} (last dim "
            f"contiguous) and norm weight {tuple(norm_weight.shape)} do not fit together"
        )
    weighted = torch.empty(M, N, dtype=x.dtype, device=x.device)
    sumsq = torch.empty(triton.cdiv(N, config.block_n), M, dtype=torch.float32, device=x.device)
    _launch(x, weight, config, weighted, bias, use_pdl, add_norm=(residual, norm_weight, sumsq))
    return PendingNorm(weighted, sumsq, norm_eps)


def _kv_destination_args(rope: SkinnyRope | None, placeholder: torch.Tensor) -> tuple:
    """(cache, slots, its four outer strides) of a rotated launch that stores K/V, else placeholders."""
    if rope is None or rope.kv_cache is None or rope.slot_mapping is None:
        return (placeholder, placeholder, 0, 0, 0, 0)
    return (rope.kv_cache, rope.slot_mapping, *rope.kv_cache.stride()[:4])


def _tma_device(device: torch.device) -> bool:
    """Hopper or later, or the CPU (where the kernels run only through Triton's interpreter)."""
    return device.type == "cpu" or (device.type == "cuda" and pdl.hopper_or_later(device.index))


def _tma_ready(t: torch.Tensor) -> bool:
    """Whether a TMA descriptor can cover ``t`` (2-D): rows contiguous, 16-byte aligned start and stride."""
    return t.stride(1) == 1 and (t.stride(0) * t.element_size()) % 16 == 0 and t.data_ptr() % 16 == 0


def _launch(
    x: torch.Tensor | PendingNorm,
    weight: torch.Tensor,
    config: SkinnyConfig,
    out: torch.Tensor,
    bias: torch.Tensor | None,
    use_pdl: bool | None,
    *,
    gated: bool = False,
    rope: SkinnyRope | None = None,
    add_norm: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,  # residual, weight, sums
) -> None:
    normed = x if isinstance(x, PendingNorm) else None
    rows = input_rows(x)
    M, K = rows.shape
    N = out.shape[1]
    if K % (config.split_k * config.block_k):
        raise ValueError(f"K={K} is not a multiple of split_k * block_k = {config.split_k * config.block_k}")
    if use_pdl is None:
        use_pdl = pdl.enabled(rows.device)
    num_m = triton.cdiv(M, config.block_m)
    num_n = triton.cdiv(N, config.block_n)
    if config.split_k > 1:
        # NOTE: the size a later, larger step needs: no growth after capture
        padded = max(M, MAX_ROWS, TMA_MAX_ROWS)
        tiles = triton.cdiv(padded, config.block_m) * num_n
        partials, tickets = _workspace(rows.device, config.split_k * padded * N, tiles)
    else:
        partials, tickets = out, out  # unused
    residual, norm_weight, sumsq_out = add_norm if add_norm is not None else (out, out, out)
    in_parts = normed.sumsq_parts.shape[0] if normed is not None else 1
    x_desc: torch.Tensor | TensorDescriptor = rows
    w_desc: torch.Tensor | TensorDescriptor = weight
    if config.tma and not (
        TMA_LOADS and _tma_device(rows.device) and _tma_ready(rows) and _tma_ready(weight)
    ):
        config = dataclasses.replace(config, tma=False)  # the same tiles by pointers
    if config.tma:
        x_desc = TensorDescriptor.from_tensor(rows, [config.block_m, config.block_k])
        w_box = config.block_n // 2 if rope is not None else config.block_n  # a rotated tile: two boxes
        w_desc = TensorDescriptor.from_tensor(weight, [w_box, config.block_k])
    _skinny_linear_kernel[(num_m * num_n * config.split_k,)](
        rows,
        weight,
        x_desc,
        w_desc,
        out,
        bias if bias is not None else out,
        rope.positions if rope is not None else out,
        rope.cos_cache if rope is not None else out,
        rope.sin_cache if rope is not None else out,
        rope.rotated if rope is not None else 0,
        *_kv_destination_args(rope, out),
        partials,
        tickets,
        residual,
        norm_weight,
        sumsq_out,
        normed.sumsq_parts if normed is not None else out,
        normed.eps if normed is not None else 0.0,
        M,
        N,
        rows.stride(0),
        weight.stride(0),
        out.stride(0),
        residual.stride(0),
        K_SHARE=K // config.split_k,
        BLOCK_M=config.block_m,
        BLOCK_N=config.block_n,
        BLOCK_K=config.block_k,
        SPLIT_K=config.split_k,
        HAS_BIAS=bias is not None,
        GATED=gated,
        ROPE=rope is not None,
        HALF=rope.head_dim // 2 if rope is not None else 1,
        STORE_KV=rope is not None and rope.kv_cache is not None,
        CACHE_BLOCK=rope.kv_cache.shape[2] if rope is not None and rope.kv_cache is not None else 1,
        NORM_OUT=add_norm is not None,
        NORMED_INPUT=normed is not None,
        IN_PARTS=in_parts,
        IN_PARTS_P=triton.next_power_of_2(in_parts),
        LATE_RESIDUAL=config.late_residual,
        TMA=config.tma,
        PREFETCH_LINES=_prefetch_lines(K // config.split_k, config.block_k),
        num_warps=config.num_warps,
        num_stages=config.num_stages,
        **pdl.kernel_args(use_pdl),
    )
