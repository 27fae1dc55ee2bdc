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
``VARIANTS`` is call 3's list. Call 2 listed consumers of 224 registers launched at 224 (they did not
launch: 12 warps x 224 exceed the register file); the launch has been at 168 since, and the second
consumer's registers are raised by ``setmaxnreg``.

    python3 benchmarks/gpu/session22_gluon_pingpong.py OUT.json        # on an H100
    python3 benchmarks/gpu/session22_gluon_pingpong.py --compile-only  # sm_90 PTX here, no GPU
"""

from __future__ import annotations

import json
import os
import sys

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, warpgroup_mma, warpgroup_mma_wait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from session21_gluon_probe import LOG2E, descriptors, tma_load


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
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 16]
    )
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, HEAD_DIM, 16]
    )
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
    for j in range(my_tiles, n_tiles):  # keys past this half's rows: release their stages unread
        st = j % STAGES
        mbarrier.wait(full.index(st), (j // STAGES) & 1)
        mbarrier.arrive(empty.index(st), count=1)

    out = acc / gl.convert_layout(l_i, row_o)[:, None]
    rows = row0 + first + gl.arange(0, BLOCK_M, layout=row_o)
    cols = gl.arange(0, HEAD_DIM, layout=col_o)
    gl.store(out_ptr + rows[:, None] * HEAD_DIM + cols[None, :], out.to(gl.bfloat16))


@gluon.jit
def _pp_second_consumer(args):
    _pp_consumer(args, 1)


@gluon.jit
def _pp_producer(descs, args):
    """One warp: both Q tiles, then every K/V tile into the ring once both consumers freed its stage."""
    q_desc, k_desc, v_desc = descs
    (_out, q_smem, k_smem, v_smem, q_bars, full, empty, _turn_bars, row0, m0, n_tiles, _scale,
     _pp) = args  # fmt: skip
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
    gl.warp_specialize(
        [
            (_pp_consumer, (args, 0)),
            (_pp_second_consumer, (args,)),
            (_pp_producer, ((q_desc, k_desc, v_desc), args)),
        ],
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


VARIANTS = [  # (block_n, stages, pingpong, second consumer's registers after setmaxnreg)
    (64, 3, False, 168),
    (64, 3, False, 240),
    (64, 3, True, 240),
    (128, 2, True, 240),
    (128, 2, False, 240),
]


def compile_only() -> None:
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    q = torch.zeros(2 * 256, 128, dtype=torch.bfloat16)
    for block_n, stages, pingpong, regs in VARIANTS:
        q_desc, k_desc, v_desc = descriptors(q, q, q, 64, block_n)
        signature = {
            "q_desc": q_desc.__mangle__(), "k_desc": k_desc.__mangle__(), "v_desc": v_desc.__mangle__(),
            "out_ptr": "*bf16", "seq_len": "i32", "scale_log2": "fp32", "BLOCK_N": "constexpr",
            "HEAD_DIM": "constexpr", "STAGES": "constexpr", "PINGPONG": "constexpr",
            "CONSUMER_REGS": "constexpr", "num_warps": "constexpr",
        }  # fmt: skip
        constexprs = {"BLOCK_N": block_n, "HEAD_DIM": 128, "STAGES": stages, "PINGPONG": pingpong,
                      "CONSUMER_REGS": regs, "num_warps": 4}  # fmt: skip
        names = list(signature)
        src = GluonASTSource(
            _pp_attention, signature, constexprs={(names.index(k),): v for k, v in constexprs.items()}
        )
        kernel = triton.compile(
            src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "maxnreg": 168}
        )
        ptx = kernel.asm["ptx"]
        spills = [line for line in ptx.splitlines() if "local" in line and ("st." in line or "ld." in line)]
        print(f"n={block_n} s={stages} pingpong={pingpong} regs={regs}: {kernel.metadata.shared} B shared, "
              f"{len(spills)} local ld/st lines in PTX", flush=True)  # fmt: skip


def main() -> None:
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

        for block_n, stages, pingpong, regs in VARIANTS:
            out = torch.full_like(q, float("nan"))

            def ours(out=out, cfg=(block_n, stages, pingpong, regs), qkv=(q, k, v), n=seq_len) -> None:
                attend_pp(*qkv, out, n, *cfg)

            label = f"{batch} x {heads} x {seq_len} n={block_n} s={stages} pp={pingpong!s:5} regs={regs}"
            try:
                ours()
                torch.cuda.synchronize()
                err = ((out.float() - ref).norm() / ref.norm()).item()
                us, sdpa_us = (t * 1e3 for t in graph_ms_interleaved([ours], [sdpa], device))
            except Exception as e:  # a variant that does not compile is a line, not the end
                print(f"{label}: {type(e).__name__}: {str(e)[:300]}", flush=True)
                continue
            rows.append({"batch": batch, "heads": heads, "seq_len": seq_len, "block_n": block_n,
                         "stages": stages, "pingpong": pingpong, "regs": regs, "us": us, "sdpa_us": sdpa_us,
                         "rel_err": err})  # fmt: skip
            with open(sys.argv[1], "w") as f:  # after every row: a hang later keeps what was measured
                json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
            print(
                f"{label}: {us:8.1f} us, SDPA {sdpa_us:8.1f} us, x {us / sdpa_us:.3f}, err {err:.1e}",
                flush=True,
            )
        torch.cuda.empty_cache()


if __name__ == "__main__":
    if "--compile-only" in sys.argv:
        compile_only()
    else:
        main()
