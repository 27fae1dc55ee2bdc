"""Session 21: can Gluon's explicit async wgmma hide the softmax behind the tensor cores?

Session 20's profile put our Triton prefill kernel's tensor pipe at 37% busy against cuDNN's 56% at
the Llama layout's 16 x 1k, and session 21 found that neither a hand-reordered loop (``tl.dot`` waits
for every wgmma group right after each product) nor Triton's warp specialization (it does not compile
on that kernel) changes the schedule. Triton 3.6 ships Gluon (``triton.experimental.gluon``), whose
``warpgroup_mma(is_async=True)`` and ``warpgroup_mma_wait(num_outstanding)`` say exactly which products
may still run: the schedule of FlashAttention-3's intra-warpgroup overlap. The next tile's scores are
issued before this tile's values product, so the softmax of one tile runs while the tensor cores
compute the other.

A probe, not an engine kernel: dense causal attention, one head per (sequence, head) row block, K/V in
a ring of TMA stages, 64-row tiles of one warpgroup. ``SEQUENTIAL`` waits for each product as ``tl.dot``
does; ``OVERLAP`` keeps one product in flight across the softmax. Both against SDPA on the same tokens
(the Llama layout's FLOPs with one KV head per query head).

A third variant, ``ws`` (``_ws_attention``), is FlashAttention-3's layout without its turn-taking: a
producer warp fills a ring of K/V stages by TMA, and two consumer warpgroups, each with 64 rows of a
128-row block, share every stage (a stage is freed by two arrivals). Written after calls 12-13 and
run in session 22 (its call 1: correct, and slower than the sequential kernel). ``time_variants`` and
``compile_sm90`` serve session 22's probe too.

    python3 benchmarks/gpu/session21_gluon_probe.py OUT.json        # on an H100
    python3 benchmarks/gpu/session21_gluon_probe.py --compile-only  # sm_90 PTX here, no GPU
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_init,
    warpgroup_mma_wait,
)
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

LOG2E = 1.4426950408889634
# Triton 3.6 (the GPU image) names the TMA load async_copy_global_to_shared; later versions async_load.
tma_load = tma.async_load if hasattr(tma, "async_load") else tma.async_copy_global_to_shared


@triton.constexpr_function
def wgmma_layout(columns):
    """The registers of one warpgroup's wgmma result with ``columns`` columns (64-row tiles)."""
    return gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, columns, 16])


@gluon.jit
def _softmax_tile(s, m_i, l_i, offs_m, j, scale_log2, BLOCK_N: gl.constexpr, col_s: gl.constexpr):
    """One tile's online-softmax update; the causal mask on every tile (cheap beside the products)."""
    offs_n = j * BLOCK_N + gl.arange(0, BLOCK_N, layout=col_s)
    s = gl.where(offs_n[None, :] <= offs_m[:, None], s, float("-inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * scale_log2)
    p = gl.exp2(s * scale_log2 - m_new[:, None])
    alpha = gl.exp2(m_i - m_new)
    l_i = l_i * alpha + gl.sum(p, 1)
    return p, alpha, m_new, l_i


@gluon.jit
def _store_normalized(out_ptr, acc, l_i, first_row, row_o: gl.constexpr, col_o: gl.constexpr):
    """Rows first_row .. of the output: the accumulated values over their softmax sums, in bf16."""
    out = acc / gl.convert_layout(l_i, row_o)[:, None]
    rows = first_row + gl.arange(0, acc.shape[0], layout=row_o)
    cols = gl.arange(0, acc.shape[1], layout=col_o)
    gl.store(out_ptr + rows[:, None] * acc.shape[1] + cols[None, :], out.to(gl.bfloat16))


@gluon.jit
def _release_unread(full, empty, first_tile, n_tiles):
    """Stages of keys past a consumer's rows: awaited and released unread, so the producer goes on."""
    STAGES: gl.constexpr = full.type.shape[0]
    for j in range(first_tile, n_tiles):
        st = j % STAGES
        mbarrier.wait(full.index(st), (j // STAGES) & 1)
        mbarrier.arrive(empty.index(st), count=1)


@gluon.jit
def _attend_tile(
    q, k_tile, v_tile, acc, m_i, l_i, offs_m, j, scale_log2, zero_s,
    BLOCK_N: gl.constexpr, col_s: gl.constexpr, row_o: gl.constexpr, p_layout: gl.constexpr,
):  # fmt: skip
    """One key tile, each product waited for (as ``tl.dot`` does): scores, softmax, values."""
    s = warpgroup_mma(q, k_tile.permute((1, 0)), zero_s, use_acc=False, is_async=True)
    s = warpgroup_mma_wait(0, deps=(s,))
    p, alpha, m_i, l_i = _softmax_tile(s, m_i, l_i, offs_m, j, scale_log2, BLOCK_N, col_s)
    acc = acc * gl.convert_layout(alpha, row_o)[:, None]
    p16 = gl.convert_layout(p.to(gl.bfloat16), p_layout)
    acc = warpgroup_mma(p16, v_tile, acc, is_async=True)
    acc = warpgroup_mma_wait(0, deps=(acc,))
    return acc, m_i, l_i


@gluon.jit
def _probe_attention(
    q_desc,
    k_desc,
    v_desc,
    out_ptr,
    seq_len,
    scale_log2,
    BLOCK_M: gl.constexpr,
    BLOCK_N: gl.constexpr,
    HEAD_DIM: gl.constexpr,
    STAGES: gl.constexpr,
    OVERLAP: gl.constexpr,
    num_warps: gl.constexpr,
):
    m_tile = gl.num_programs(0) - 1 - gl.program_id(0)  # the longest rows first
    row0 = gl.program_id(1) * seq_len
    q_row = row0 + m_tile * BLOCK_M

    s_layout: gl.constexpr = wgmma_layout(BLOCK_N)
    o_layout: gl.constexpr = wgmma_layout(HEAD_DIM)
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    col_s: gl.constexpr = gl.SliceLayout(0, s_layout)
    row_o: gl.constexpr = gl.SliceLayout(1, o_layout)
    col_o: gl.constexpr = gl.SliceLayout(0, o_layout)

    q_smem = gl.allocate_shared_memory(q_desc.dtype, [BLOCK_M, HEAD_DIM], q_desc.layout)
    k_smem = gl.allocate_shared_memory(k_desc.dtype, [STAGES, BLOCK_N, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(v_desc.dtype, [STAGES, BLOCK_N, HEAD_DIM], v_desc.layout)
    q_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    kv_bars = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    mbarrier.init(q_bar, count=1)
    for i in gl.static_range(STAGES):
        mbarrier.init(kv_bars.index(i), count=1)

    # Causal: keys below the tile's last row; tiles of BLOCK_N keys (BLOCK_M a multiple of BLOCK_N).
    n_tiles = (m_tile + 1) * (BLOCK_M // BLOCK_N)
    kv_bytes: gl.constexpr = 2 * BLOCK_N * HEAD_DIM * 2
    mbarrier.expect(q_bar, BLOCK_M * HEAD_DIM * 2)
    tma_load(q_desc, [q_row, 0], q_bar, q_smem)
    for i in gl.static_range(STAGES):
        first = i < n_tiles
        mbarrier.expect(kv_bars.index(i), kv_bytes, pred=first)
        tma_load(k_desc, [row0 + i * BLOCK_N, 0], kv_bars.index(i), k_smem.index(i), pred=first)
        tma_load(v_desc, [row0 + i * BLOCK_N, 0], kv_bars.index(i), v_smem.index(i), pred=first)
    mbarrier.wait(q_bar, 0)

    offs_m = m_tile * BLOCK_M + gl.arange(0, BLOCK_M, layout=row_s)
    m_i = gl.full([BLOCK_M], -1.0e30, gl.float32, layout=row_s)
    l_i = gl.full([BLOCK_M], 0.0, gl.float32, layout=row_s)
    acc = gl.full([BLOCK_M, HEAD_DIM], 0.0, gl.float32, layout=o_layout)
    zero_s = gl.full([BLOCK_M, BLOCK_N], 0.0, gl.float32, layout=s_layout)

    if OVERLAP:
        # Tiles j and j + 1 are resident while tile j - 1's stage is refilled: three stages at least
        # (with two, the wait for tile j + 1 came before its load: session 21's call 12 hung there).
        gl.static_assert(STAGES >= 3)
        mbarrier.wait(kv_bars.index(0), 0)
        s = warpgroup_mma(q_smem, k_smem.index(0).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(0, deps=(s,))
        acc = warpgroup_mma_init(acc)  # carried across the loop with a values product in flight
        for j in range(n_tiles - 1):
            st = j % STAGES
            nxt = (j + 1) % STAGES
            p, alpha, m_i, l_i = _softmax_tile(s, m_i, l_i, offs_m, j, scale_log2, BLOCK_N, col_s)
            mbarrier.wait(kv_bars.index(nxt), ((j + 1) // STAGES) & 1)
            s_next = warpgroup_mma(
                q_smem, k_smem.index(nxt).permute((1, 0)), zero_s, use_acc=False, is_async=True
            )
            acc = warpgroup_mma_wait(1, deps=(acc,))  # the previous tile's values product, not s_next
            # Tile j - 1's stage is free now (its scores and values products are done): refill it.
            back = (j + STAGES - 1) % STAGES
            ok = (j >= 1) & (j - 1 + STAGES < n_tiles)
            mbarrier.expect(kv_bars.index(back), kv_bytes, pred=ok)
            coord = row0 + (j - 1 + STAGES) * BLOCK_N
            tma_load(k_desc, [coord, 0], kv_bars.index(back), k_smem.index(back), pred=ok)
            tma_load(v_desc, [coord, 0], kv_bars.index(back), v_smem.index(back), pred=ok)
            acc = acc * gl.convert_layout(alpha, row_o)[:, None]
            p16 = gl.convert_layout(p.to(gl.bfloat16), p_layout)
            acc = warpgroup_mma(p16, v_smem.index(st), acc, is_async=True)
            s = warpgroup_mma_wait(1, deps=(s_next,))  # the scores; this tile's values product may run on
        last = n_tiles - 1
        p, alpha, m_i, l_i = _softmax_tile(s, m_i, l_i, offs_m, last, scale_log2, BLOCK_N, col_s)
        acc = warpgroup_mma_wait(0, deps=(acc,))
        acc = acc * gl.convert_layout(alpha, row_o)[:, None]
        p16 = gl.convert_layout(p.to(gl.bfloat16), p_layout)
        acc = warpgroup_mma(p16, v_smem.index(last % STAGES), acc, is_async=True)
        acc = warpgroup_mma_wait(0, deps=(acc,))
    else:
        for j in range(n_tiles):
            st = j % STAGES
            mbarrier.wait(kv_bars.index(st), (j // STAGES) & 1)
            acc, m_i, l_i = _attend_tile(
                q_smem, k_smem.index(st), v_smem.index(st), acc, m_i, l_i, offs_m, j, scale_log2, zero_s,
                BLOCK_N, col_s, row_o, p_layout,
            )  # fmt: skip
            ok = j + STAGES < n_tiles
            mbarrier.expect(kv_bars.index(st), kv_bytes, pred=ok)
            coord = row0 + (j + STAGES) * BLOCK_N
            tma_load(k_desc, [coord, 0], kv_bars.index(st), k_smem.index(st), pred=ok)
            tma_load(v_desc, [coord, 0], kv_bars.index(st), v_smem.index(st), pred=ok)

    _store_normalized(out_ptr, acc, l_i, q_row, row_o, col_o)


# -- warp-specialized: two consumer warpgroups share the K/V stages a producer warp fills -------------


@gluon.jit
def _ws_consumer(args, c: gl.constexpr):
    """Rows m0 + 64 c .. m0 + 64 c + 63 of the 128-row block: every K/V stage the producer fills is
    awaited and released (two arrivals free a stage), computed on only while its keys are causal."""
    (_q_desc, _k_desc, _v_desc, out_ptr, q_smem, k_smem, v_smem, q_bars, full, empty, row0, m0, n_tiles,
     scale_log2) = args  # fmt: skip
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    HEAD_DIM: gl.constexpr = k_smem.type.shape[2]
    BLOCK_M: gl.constexpr = 64
    s_layout: gl.constexpr = wgmma_layout(BLOCK_N)
    o_layout: gl.constexpr = wgmma_layout(HEAD_DIM)
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    col_s: gl.constexpr = gl.SliceLayout(0, s_layout)
    row_o: gl.constexpr = gl.SliceLayout(1, o_layout)
    col_o: gl.constexpr = gl.SliceLayout(0, o_layout)

    first = m0 + c * BLOCK_M
    my_tiles = (first + BLOCK_M) // BLOCK_N
    offs_m = first + gl.arange(0, BLOCK_M, layout=row_s)
    m_i = gl.full([BLOCK_M], -1.0e30, gl.float32, layout=row_s)
    l_i = gl.full([BLOCK_M], 0.0, gl.float32, layout=row_s)
    acc = gl.full([BLOCK_M, HEAD_DIM], 0.0, gl.float32, layout=o_layout)
    zero_s = gl.full([BLOCK_M, BLOCK_N], 0.0, gl.float32, layout=s_layout)
    q_tile = q_smem.index(c)
    mbarrier.wait(q_bars.index(c), 0)
    for j in range(my_tiles):
        st = j % STAGES
        mbarrier.wait(full.index(st), (j // STAGES) & 1)
        acc, m_i, l_i = _attend_tile(
            q_tile, k_smem.index(st), v_smem.index(st), acc, m_i, l_i, offs_m, j, scale_log2, zero_s,
            BLOCK_N, col_s, row_o, p_layout,
        )  # fmt: skip
        mbarrier.arrive(empty.index(st), count=1)
    _release_unread(full, empty, my_tiles, n_tiles)
    _store_normalized(out_ptr, acc, l_i, row0 + first, row_o, col_o)


@gluon.jit
def _ws_second_consumer(args):
    _ws_consumer(args, 1)


@gluon.jit
def _ws_producer(args):
    """One warp: both Q tiles, then every K/V tile into the ring once both consumers freed its stage."""
    (q_desc, k_desc, v_desc, _out_ptr, q_smem, k_smem, v_smem, q_bars, full, empty, row0, m0, n_tiles,
     _scale_log2) = args  # fmt: skip
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    HEAD_DIM: gl.constexpr = k_smem.type.shape[2]
    for c in gl.static_range(2):
        mbarrier.expect(q_bars.index(c), 64 * HEAD_DIM * 2)
        tma_load(q_desc, [row0 + m0 + c * 64, 0], q_bars.index(c), q_smem.index(c))
    for j in range(n_tiles):
        st = j % STAGES
        mbarrier.wait(empty.index(st), ((j // STAGES) & 1) ^ 1)  # a fresh barrier passes phase 1
        mbarrier.expect(full.index(st), 2 * BLOCK_N * HEAD_DIM * 2)
        tma_load(k_desc, [row0 + j * BLOCK_N, 0], full.index(st), k_smem.index(st))
        tma_load(v_desc, [row0 + j * BLOCK_N, 0], full.index(st), v_smem.index(st))


@gluon.jit
def _ws_attention(
    q_desc, k_desc, v_desc, out_ptr, seq_len, scale_log2,
    BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, num_warps: gl.constexpr,
):  # fmt: skip
    m0 = (gl.num_programs(0) - 1 - gl.program_id(0)) * 128  # the longest rows first
    row0 = gl.program_id(1) * seq_len
    q_smem = gl.allocate_shared_memory(q_desc.dtype, [2, 64, HEAD_DIM], q_desc.layout)
    k_smem = gl.allocate_shared_memory(k_desc.dtype, [STAGES, BLOCK_N, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(v_desc.dtype, [STAGES, BLOCK_N, HEAD_DIM], v_desc.layout)
    q_bars = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    full = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(2):
        mbarrier.init(q_bars.index(i), count=1)
    for i in gl.static_range(STAGES):
        mbarrier.init(full.index(i), count=1)
        mbarrier.init(empty.index(i), count=2)
    n_tiles = (m0 + 128) // BLOCK_N
    args = (q_desc, k_desc, v_desc, out_ptr, q_smem, k_smem, v_smem, q_bars, full, empty, row0, m0, n_tiles,
            scale_log2)  # fmt: skip
    gl.warp_specialize(
        [(_ws_consumer, (args, 0)), (_ws_second_consumer, (args,)), (_ws_producer, (args,))],
        [4, 1],
        [168, 24],
    )


def attend_ws(q, k, v, out, seq_len: int, block_n: int, stages: int) -> None:
    rows, head_dim = q.shape
    q_desc, k_desc, v_desc = descriptors(q, k, v, 64, block_n)
    grid = (seq_len // 128, rows // seq_len)
    _ws_attention[grid](
        q_desc, k_desc, v_desc, out, seq_len, head_dim**-0.5 * LOG2E,
        BLOCK_N=block_n, HEAD_DIM=head_dim, STAGES=stages, num_warps=4, maxnreg=168,
    )  # fmt: skip


def descriptors(q, k, v, block_m: int, block_n: int) -> tuple[TensorDescriptor, ...]:
    """Descriptors over [rows, head_dim] views of Q, K, V."""
    head_dim = q.shape[-1]
    q_layout = gl.NVMMASharedLayout.get_default_for([block_m, head_dim], gl.bfloat16)
    kv_layout = gl.NVMMASharedLayout.get_default_for([block_n, head_dim], gl.bfloat16)
    return (
        TensorDescriptor(q, list(q.shape), list(q.stride()), [block_m, head_dim], q_layout),
        TensorDescriptor(k, list(k.shape), list(k.stride()), [block_n, head_dim], kv_layout),
        TensorDescriptor(v, list(v.shape), list(v.stride()), [block_n, head_dim], kv_layout),
    )


def attend(q, k, v, out, seq_len: int, block_m: int, block_n: int, stages: int, overlap: bool) -> None:
    rows, head_dim = q.shape
    q_desc, k_desc, v_desc = descriptors(q, k, v, block_m, block_n)
    grid = (seq_len // block_m, rows // seq_len)
    _probe_attention[grid](
        q_desc, k_desc, v_desc, out, seq_len, head_dim**-0.5 * LOG2E,
        BLOCK_M=block_m, BLOCK_N=block_n, HEAD_DIM=head_dim, STAGES=stages, OVERLAP=overlap, num_warps=4,
    )  # fmt: skip


def compile_sm90(kernel: Any, signature: dict[str, str], constexprs: dict[str, Any], **options: Any) -> Any:
    """``kernel`` built for sm_90 by this machine's Triton (no GPU): its API use and layouts hold."""
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    names = list(signature)
    src = GluonASTSource(kernel, signature, constexprs={(names.index(k),): v for k, v in constexprs.items()})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, **options})


def descriptor_signature(block_n: int) -> dict[str, str]:
    """The three descriptors' argument types, as the launcher mangles them (64-row Q tiles)."""
    q = torch.zeros(2 * 256, 128, dtype=torch.bfloat16)
    q_desc, k_desc, v_desc = descriptors(q, q, q, 64, block_n)
    return {"q_desc": q_desc.__mangle__(), "k_desc": k_desc.__mangle__(), "v_desc": v_desc.__mangle__()}


def compile_only() -> None:
    """Build every variant for sm_90 with this machine's Triton (no GPU)."""
    common = {"out_ptr": "*bf16", "seq_len": "i32", "scale_log2": "fp32"}
    for overlap in (False, True):
        constexprs = {"BLOCK_M": 64, "BLOCK_N": 64, "HEAD_DIM": 128, "STAGES": 3, "OVERLAP": overlap,
                      "num_warps": 4}  # fmt: skip
        signature = {**descriptor_signature(64), **common, **dict.fromkeys(constexprs, "constexpr")}
        ptx = compile_sm90(_probe_attention, signature, constexprs).asm["ptx"]
        print(f"overlap={overlap}: compiled, wgmma.wait_group lines: "
              f"{[line.strip() for line in ptx.splitlines() if 'wgmma.wait_group' in line]}")  # fmt: skip
    constexprs = {"BLOCK_N": 64, "HEAD_DIM": 128, "STAGES": 3, "num_warps": 4}
    signature = {**descriptor_signature(64), **common, **dict.fromkeys(constexprs, "constexpr")}
    kernel = compile_sm90(_ws_attention, signature, constexprs, maxnreg=168)
    print(f"warp-specialized: compiled, {kernel.metadata.shared} bytes of shared memory")


def time_variants(out_path: str, variants: list[dict[str, Any]], attend_variant: Callable[..., None]) -> None:
    """Every variant beside SDPA (graphs replayed in turn) on dense causal MHA, head dim 128, at 16 and
    64 x 32 heads x 1k: GPU time and error, a row each, written to ``out_path`` as it finishes (a hang
    later keeps what was measured). ``attend_variant(q, k, v, out, seq_len, **variant)``."""
    from pagedllm.bench.kernels import graph_ms_interleaved

    device = torch.device("cuda")
    rows = []
    for batch, heads, seq_len in [(16, 32, 1024), (64, 32, 1024)]:
        z = batch * heads
        q, k, v = (torch.randn(z * seq_len, 128, device=device, dtype=torch.bfloat16) for _ in range(3))
        q4, k4, v4 = (t.view(batch, heads, seq_len, 128) for t in (q, k, v))
        ref = torch.nn.functional.scaled_dot_product_attention(q4, k4, v4, is_causal=True)
        ref = ref.reshape(z * seq_len, 128).float()

        def sdpa(q4=q4, k4=k4, v4=v4) -> None:
            torch.nn.functional.scaled_dot_product_attention(q4, k4, v4, is_causal=True)

        for variant in variants:
            out = torch.full_like(q, float("nan"))

            def ours(out=out, variant=variant, qkv=(q, k, v), n=seq_len) -> None:
                attend_variant(*qkv, out, n, **variant)

            label = f"{batch} x {heads} x {seq_len} " + " ".join(
                f"{key}={val!s:5}" for key, val in variant.items()
            )
            try:
                ours()
                torch.cuda.synchronize()
                err = ((out.float() - ref).norm() / ref.norm()).item()
                us, sdpa_us = (t * 1e3 for t in graph_ms_interleaved([ours], [sdpa], device))
            except Exception as e:  # a variant that does not compile or launch is a line, not the end
                print(f"{label}: {type(e).__name__}: {str(e)[:300]}", flush=True)
                continue
            rows.append({"batch": batch, "heads": heads, "seq_len": seq_len, **variant, "us": us,
                         "sdpa_us": sdpa_us, "rel_err": err})  # fmt: skip
            with open(out_path, "w") as f:
                json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
            print(
                f"{label}: {us:8.1f} us, SDPA {sdpa_us:8.1f} us, x {us / sdpa_us:.3f}, err {err:.1e}",
                flush=True,
            )
        torch.cuda.empty_cache()


VARIANTS: list[dict[str, Any]] = [  # session 22's call 1 (session 21's calls 12-13 ran the first two)
    {"block_n": 64, "stages": 3, "overlap": False},
    {"block_n": 64, "stages": 3, "overlap": True},
    {"block_n": 64, "stages": 2, "overlap": "ws"},
    {"block_n": 64, "stages": 3, "overlap": "ws"},
    {"block_n": 64, "stages": 4, "overlap": "ws"},
]


def attend_variant(q, k, v, out, seq_len: int, block_n: int, stages: int, overlap: bool | str) -> None:
    if overlap == "ws":
        attend_ws(q, k, v, out, seq_len, block_n, stages)
    else:
        attend(q, k, v, out, seq_len, 64, block_n, stages, bool(overlap))


if __name__ == "__main__":
    if "--compile-only" in sys.argv:
        compile_only()
    else:
        time_variants(sys.argv[1], VARIANTS, attend_variant)
