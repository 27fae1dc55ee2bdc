"""Session 22: FlashAttention-3's turn-taking ("ping-pong") in Gluon, after session 21's probe.

Session 22's call 1 ran session 21's warp-specialized probe: a producer warp fills a ring of K/V stages
by TMA and two consumer warpgroups (64 rows each of a 128-row block) share every stage. It was correct
and slower than one warpgroup doing everything (1.43-1.53x SDPA against 1.34-1.35x). Its consumers wait
for each product before the softmax, at the same moments, so nothing need keep the tensor cores busy
during a softmax. FA3 makes them take turns: a consumer issues its products (this tile's scores and the
previous tile's values) only after the other has issued its own, then does its softmax while the
other's products run.

One kernel here, dense causal MHA with head dim 128 against SDPA on the same tokens: producer + two
consumers, each consumer issuing tile j's scores with tile j - 1's values, waiting for both, then the
softmax (the causal mask only on tiles that cross the diagonal); ``PINGPONG`` adds the turn-taking.
The producer is session 21's (``_ws_producer``); calls 2-3 ran a copy of it, the same code with
another argument tuple. ``VARIANTS`` is call 3's list. Call 2 listed consumers of 224 registers
launched at 224 (they did not launch: 12 warps x 224 exceed the register file); the launch has been at
168 since, and the second consumer's registers are raised by ``setmaxnreg``.

    python3 benchmarks/gpu/session22_gluon_pingpong.py OUT.json        # on an H100
    python3 benchmarks/gpu/session22_gluon_pingpong.py --compile-only  # sm_90 PTX here, no GPU
"""

from __future__ import annotations

import os
import sys
from typing import Any

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, warpgroup_mma, warpgroup_mma_wait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from session21_gluon_probe import (
    LOG2E,
    _release_unread,
    _store_normalized,
    _ws_producer,
    compile_sm90,
    descriptor_signature,
    descriptors,
    time_variants,
    wgmma_layout,
)


@gluon.jit
def _softmax(
    s, m_i, l_i, offs_m, j, scale_log2, BLOCK_N: gl.constexpr, col_s: gl.constexpr, MASK: gl.constexpr
):
    """One tile's online-softmax update; the causal mask only where the tile crosses the diagonal."""
    if MASK:
        offs_n = j * BLOCK_N + gl.arange(0, BLOCK_N, layout=col_s)
        s = gl.where(offs_n[None, :] <= offs_m[:, None], s, float("-inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * scale_log2)
    p = gl.exp2(s * scale_log2 - m_new[:, None])
    alpha = gl.exp2(m_i - m_new)
    l_i = l_i * alpha + gl.sum(p, 1)
    return p, alpha, m_new, l_i


@gluon.jit
def _turn(turn, c: gl.constexpr, k, n_sync, PINGPONG: gl.constexpr):
    """Wait until the other consumer has issued its products for event k (consumer 0 goes first)."""
    if PINGPONG:
        mbarrier.wait(turn.index(c), (k & 1) ^ (1 - c), pred=k < n_sync)


@gluon.jit
def _pass_turn(turn, c: gl.constexpr, k, n_sync, PINGPONG: gl.constexpr):
    if PINGPONG:
        mbarrier.arrive(turn.index(1 - c), count=1, pred=k < n_sync)


@gluon.jit
def _pp_consumer(args, c: gl.constexpr):
    """Rows m0 + 64 c .. + 63: tile j's scores issued together with tile j - 1's values, both waited
    for, then tile j's softmax (while the other consumer's products run, under ``PINGPONG``)."""
    (out_ptr, q_smem, k_smem, v_smem, q_bars, full, empty, turn, row0, m0, n_tiles, scale_log2,
     PINGPONG) = args  # fmt: skip
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
    my_tiles = (first + BLOCK_M + BLOCK_N - 1) // BLOCK_N
    n_full = first // BLOCK_N  # tiles wholly below the diagonal: no mask
    # Turns are taken for the events both consumers have: consumer 0's tiles + 1 (its last values).
    n_sync = (m0 + BLOCK_M + BLOCK_N - 1) // BLOCK_N + 1
    offs_m = first + gl.arange(0, BLOCK_M, layout=row_s)
    m_i = gl.full([BLOCK_M], -1.0e30, gl.float32, layout=row_s)
    l_i = gl.full([BLOCK_M], 0.0, gl.float32, layout=row_s)
    acc = gl.full([BLOCK_M, HEAD_DIM], 0.0, gl.float32, layout=o_layout)
    zero_s = gl.full([BLOCK_M, BLOCK_N], 0.0, gl.float32, layout=s_layout)
    q_tile = q_smem.index(c)
    mbarrier.wait(q_bars.index(c), 0)

    # Event 0: tile 0's scores alone.
    mbarrier.wait(full.index(0), 0)
    _turn(turn, c, 0, n_sync, PINGPONG)
    s = warpgroup_mma(q_tile, k_smem.index(0).permute((1, 0)), zero_s, use_acc=False, is_async=True)
    _pass_turn(turn, c, 0, n_sync, PINGPONG)
    s = warpgroup_mma_wait(0, deps=(s,))
    if n_full > 0:
        p, alpha, m_i, l_i = _softmax(s, m_i, l_i, offs_m, 0, scale_log2, BLOCK_N, col_s, False)
    else:
        p, alpha, m_i, l_i = _softmax(s, m_i, l_i, offs_m, 0, scale_log2, BLOCK_N, col_s, True)
    for j in range(1, my_tiles):
        st = j % STAGES
        prev = (j - 1) % STAGES
        mbarrier.wait(full.index(st), (j // STAGES) & 1)
        _turn(turn, c, j, n_sync, PINGPONG)
        s = warpgroup_mma(q_tile, k_smem.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        acc = acc * gl.convert_layout(alpha, row_o)[:, None]
        p16 = gl.convert_layout(p.to(gl.bfloat16), p_layout)
        acc = warpgroup_mma(p16, v_smem.index(prev), acc, is_async=True)
        _pass_turn(turn, c, j, n_sync, PINGPONG)
        s, acc = warpgroup_mma_wait(0, deps=(s, acc))
        mbarrier.arrive(empty.index(prev), count=1)
        if j < n_full:
            p, alpha, m_i, l_i = _softmax(s, m_i, l_i, offs_m, j, scale_log2, BLOCK_N, col_s, False)
        else:
            p, alpha, m_i, l_i = _softmax(s, m_i, l_i, offs_m, j, scale_log2, BLOCK_N, col_s, True)
    # The last event: the last tile's values.
    last = my_tiles - 1
    _turn(turn, c, my_tiles, n_sync, PINGPONG)
    acc = acc * gl.convert_layout(alpha, row_o)[:, None]
    p16 = gl.convert_layout(p.to(gl.bfloat16), p_layout)
    acc = warpgroup_mma(p16, v_smem.index(last % STAGES), acc, is_async=True)
    _pass_turn(turn, c, my_tiles, n_sync, PINGPONG)
    acc = warpgroup_mma_wait(0, deps=(acc,))
    mbarrier.arrive(empty.index(last % STAGES), count=1)
    _release_unread(full, empty, my_tiles, n_tiles)
    _store_normalized(out_ptr, acc, l_i, row0 + first, row_o, col_o)


@gluon.jit
def _pp_second_consumer(args):
    _pp_consumer(args, 1)


@gluon.jit
def _pp_attention(
    q_desc, k_desc, v_desc, out_ptr, seq_len, scale_log2,
    BLOCK_N: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, PINGPONG: gl.constexpr,
    CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr,
):  # fmt: skip
    m0 = (gl.num_programs(0) - 1 - gl.program_id(0)) * 128  # the longest rows first
    row0 = gl.program_id(1) * seq_len
    q_smem = gl.allocate_shared_memory(q_desc.dtype, [2, 64, HEAD_DIM], q_desc.layout)
    k_smem = gl.allocate_shared_memory(k_desc.dtype, [STAGES, BLOCK_N, HEAD_DIM], k_desc.layout)
    v_smem = gl.allocate_shared_memory(v_desc.dtype, [STAGES, BLOCK_N, HEAD_DIM], v_desc.layout)
    q_bars = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    full = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    turn = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(2):
        mbarrier.init(q_bars.index(i), count=1)
        mbarrier.init(turn.index(i), count=1)
    for i in gl.static_range(STAGES):
        mbarrier.init(full.index(i), count=1)
        mbarrier.init(empty.index(i), count=2)
    n_tiles = (m0 + 128 + BLOCK_N - 1) // BLOCK_N
    args = (out_ptr, q_smem, k_smem, v_smem, q_bars, full, empty, turn, row0, m0, n_tiles, scale_log2,
            PINGPONG)  # fmt: skip
    producer_args = (q_desc, k_desc, v_desc, out_ptr, q_smem, k_smem, v_smem, q_bars, full, empty, row0, m0,
                     n_tiles, scale_log2)  # fmt: skip
    gl.warp_specialize(
        [(_pp_consumer, (args, 0)), (_pp_second_consumer, (args,)), (_ws_producer, (producer_args,))],
        [4, 1],
        [CONSUMER_REGS, 24],
    )


def attend_pp(q, k, v, out, seq_len: int, block_n: int, stages: int, pingpong: bool, regs: int) -> None:
    rows, head_dim = q.shape
    q_desc, k_desc, v_desc = descriptors(q, k, v, 64, block_n)
    grid = (seq_len // 128, rows // seq_len)
    _pp_attention[grid](
        q_desc, k_desc, v_desc, out, seq_len, head_dim**-0.5 * LOG2E,
        BLOCK_N=block_n, HEAD_DIM=head_dim, STAGES=stages, PINGPONG=pingpong, CONSUMER_REGS=regs,
        num_warps=4, maxnreg=168,  # 12 warps (warpgroups) at launch: 168 x 384 fills the register file
    )  # fmt: skip


VARIANTS: list[dict[str, Any]] = [  # call 3's; regs: the second consumer's registers after setmaxnreg
    {"block_n": 64, "stages": 3, "pingpong": False, "regs": 168},
    {"block_n": 64, "stages": 3, "pingpong": False, "regs": 240},
    {"block_n": 64, "stages": 3, "pingpong": True, "regs": 240},
    {"block_n": 128, "stages": 2, "pingpong": True, "regs": 240},
    {"block_n": 128, "stages": 2, "pingpong": False, "regs": 240},
]


def compile_only() -> None:
    for variant in VARIANTS:
        signature = {**descriptor_signature(variant["block_n"]), "out_ptr": "*bf16", "seq_len": "i32",
                     "scale_log2": "fp32"}  # fmt: skip
        constexprs = {"BLOCK_N": variant["block_n"], "HEAD_DIM": 128, "STAGES": variant["stages"],
                      "PINGPONG": variant["pingpong"], "CONSUMER_REGS": variant["regs"],
                      "num_warps": 4}  # fmt: skip
        signature.update(dict.fromkeys(constexprs, "constexpr"))
        kernel = compile_sm90(_pp_attention, signature, constexprs, maxnreg=168)
        print(f"{variant}: compiled, {kernel.metadata.shared} bytes of shared memory", flush=True)


if __name__ == "__main__":
    if "--compile-only" in sys.argv:
        compile_only()
    else:
        time_variants(sys.argv[1], VARIANTS, attend_pp)
