"""Session 35: how fast can the 1B's 256-row decode step read its K/V at all?

Decode attention in that step reads ~277 MB a layer in 101-105 us, ~0.9 of copy bandwidth, and every
launch tried (one program per sequence pair, carried block ids, persistent programs) lands there. This
times, on one layer's cache shaped as the engine's (head-major, 16-token blocks, 8 KV heads of 64 dims,
256 sequences of 528 tokens):

- the engine's decode attention (its own plan);
- a kernel that reads exactly attention's K/V tiles through the block table, as attention does, and only
  sums them (no softmax, no products): attention's memory traffic alone;
- the same bytes read as one contiguous range (torch's sum), and copy bandwidth (read + write).

each with the blocks in sequence order (as `bench decode` allocates them) and shuffled through the pool.
CUDA-graph replays (triton.testing.do_bench_cudagraph), median of 5 repeats.

    python3 benchmarks/gpu/session35_kv_read_floor.py OUT.json
"""

from __future__ import annotations

import json
import statistics
import sys

import torch
import triton
import triton.language as tl
from triton.testing import do_bench_cudagraph

from pagedllm.attention.triton.decode import paged_decode_attention
from pagedllm.bench.environment import environment
from pagedllm.bench.roofline import copy_bytes_per_s
from pagedllm.worker.kv_cache import new_kv_cache

NUM_SEQS, CONTEXT, BLOCK_SIZE, KV_HEADS, HEAD_DIM, Q_HEADS = 256, 528, 16, 8, 64, 32


@triton.jit
def _read_tiles_kernel(
    out_ptr,
    cache_ptr,
    block_tables_ptr,
    seq_lens_ptr,
    stride_ckv,
    stride_cb,
    stride_ct,
    stride_ch,
    stride_bt,
    KV_PER_PROG: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Decode attention's loads (its KV-head-pair plan) without its arithmetic."""
    seq = tl.program_id(0)
    kv_block = tl.program_id(1)
    seq_len = tl.load(seq_lens_ptr + seq)
    c = tl.arange(0, KV_PER_PROG * HEAD_DIM)
    n = tl.arange(0, BLOCK_N)
    col = (c // HEAD_DIM) * stride_ch + c % HEAD_DIM
    base = cache_ptr + kv_block * KV_PER_PROG * stride_ch
    table = block_tables_ptr + seq.to(tl.int64) * stride_bt
    total = tl.zeros([KV_PER_PROG * HEAD_DIM], dtype=tl.float32)
    for t0 in tl.range(0, seq_len, BLOCK_N):
        t = t0 + n
        ok = t < seq_len
        block = tl.load(table + t // BLOCK_SIZE, mask=ok, other=0).to(tl.int64)
        row = block * stride_cb + (t % BLOCK_SIZE) * stride_ct
        k = tl.load(base + row[:, None] + col[None, :], mask=ok[:, None], other=0.0)
        v = tl.load(base + stride_ckv + row[:, None] + col[None, :], mask=ok[:, None], other=0.0)
        total += tl.sum(k.to(tl.float32) + v.to(tl.float32), 0)
    tl.store(out_ptr + (seq * tl.num_programs(1) + kv_block) * KV_PER_PROG * HEAD_DIM + c, total)


@triton.jit
def _read_contiguous_kernel(out_ptr, src_ptr, num_chunks, CHUNK: tl.constexpr):
    """Sums ``num_chunks`` contiguous chunks of CHUNK elements, program i taking chunks i, i + G, ..."""
    pid = tl.program_id(0)
    offsets = tl.arange(0, CHUNK)
    total = tl.zeros([CHUNK], dtype=tl.float32)
    for chunk in tl.range(pid, num_chunks, tl.num_programs(0)):
        total += tl.load(src_ptr + chunk * CHUNK + offsets).to(tl.float32)  # < 2**31 elements here
    tl.store(out_ptr + pid * CHUNK + offsets, total)


def read_contiguous(out, flat, programs: int, chunk: int, warps: int) -> None:
    _read_contiguous_kernel[(programs,)](out, flat, flat.numel() // chunk, CHUNK=chunk, num_warps=warps)


def read_tiles(out, cache, block_tables, seq_lens, kv_per_prog: int, block_n: int, warps: int) -> None:
    _read_tiles_kernel[(NUM_SEQS, KV_HEADS // kv_per_prog)](
        out, cache, block_tables, seq_lens,
        cache.stride(0), cache.stride(1), cache.stride(2), cache.stride(3), block_tables.stride(0),
        KV_PER_PROG=kv_per_prog, HEAD_DIM=HEAD_DIM, BLOCK_SIZE=BLOCK_SIZE, BLOCK_N=block_n,
        num_warps=warps, num_stages=3,
    )  # fmt: skip


def median_us(fn) -> float:
    return statistics.median(do_bench_cudagraph(fn, rep=50) for _ in range(5)) * 1e3


def main() -> int:
    device = torch.device("cuda")
    blocks_per_seq = -(-CONTEXT // BLOCK_SIZE)
    num_blocks = NUM_SEQS * blocks_per_seq + 1
    cache = new_kv_cache(num_blocks, BLOCK_SIZE, KV_HEADS, HEAD_DIM, torch.bfloat16, device)
    cache.normal_()
    kv_bytes = 2 * NUM_SEQS * CONTEXT * KV_HEADS * HEAD_DIM * 2
    copy_bw = copy_bytes_per_s(device)
    seq_lens = torch.full((NUM_SEQS,), CONTEXT, dtype=torch.int32, device=device)
    query_start_loc = torch.arange(NUM_SEQS + 1, dtype=torch.int32, device=device)
    query = torch.randn(NUM_SEQS, Q_HEADS, HEAD_DIM, dtype=torch.bfloat16, device=device)
    attn_out = torch.empty_like(query)
    sums = torch.empty(NUM_SEQS * KV_HEADS * HEAD_DIM, dtype=torch.float32, device=device)
    storage = cache.as_strided((2 * num_blocks * KV_HEADS * BLOCK_SIZE * HEAD_DIM,), (1,))
    used = storage.view(2, num_blocks, -1)[:, 1:]  # every block the sequences hold (block 0 is spare)
    order = torch.arange(1, num_blocks, dtype=torch.int32, device=device)
    rows: dict[str, float] = {
        "torch sum of the same bytes, contiguous": median_us(lambda: used.sum(dtype=torch.float32)),
    }
    flat = used[0].reshape(-1)[: kv_bytes // 2 // 2]  # K's share as one contiguous range, then twice
    flat = torch.cat([flat, used[1].reshape(-1)[: flat.numel()]])
    scratch = torch.empty(4096 * 8192, dtype=torch.float32, device=device)
    for programs, chunk, warps in ((528, 4096, 4), (1056, 4096, 4), (528, 8192, 8), (2112, 2048, 4)):
        rows[f"contiguous read, {programs} programs, {chunk * 2 // 1024} KB loads, w{warps}"] = median_us(
            lambda p=programs, c=chunk, w=warps: read_contiguous(scratch, flat, p, c, w)
        )
    for layout, ids in (
        ("in order", order),
        ("shuffled", order[torch.randperm(order.numel(), device=device)]),
    ):
        tables = ids.view(NUM_SEQS, blocks_per_seq).contiguous()
        rows[f"{layout}: decode attention (engine plan)"] = median_us(
            lambda t=tables: paged_decode_attention(
                attn_out, query, cache, t, seq_lens, query_start_loc, CONTEXT, 0.125
            )
        )
        for kv_per_prog, block_n, warps in ((2, 64, 4), (2, 64, 8), (1, 64, 4), (2, 128, 4), (8, 32, 4)):
            rows[f"{layout}: attention's loads only, kv{kv_per_prog} n{block_n} w{warps}"] = median_us(
                lambda t=tables, a=kv_per_prog, b=block_n, w=warps: read_tiles(
                    sums, cache, t, seq_lens, a, b, w
                )
            )
    result = {
        **environment(),
        "shape": {
            "seqs": NUM_SEQS,
            "context": CONTEXT,
            "block_size": BLOCK_SIZE,
            "kv_heads": KV_HEADS,
            "head_dim": HEAD_DIM,
        },
        "kv_bytes": kv_bytes,
        "copy_bytes_per_s": copy_bw,
        "floor_us": kv_bytes / copy_bw * 1e6,
        "rows_us": rows,
    }
    with open(sys.argv[1], "w") as f:
        json.dump(result, f, indent=1)
    print(f"K/V {kv_bytes / 1e6:.1f} MB; floor at copy bandwidth {result['floor_us']:.1f} us")
    for name, us in rows.items():
        print(f"{name:58s} {us:7.1f} us  {kv_bytes / (us * 1e-6) / copy_bw:.3f} of copy bandwidth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
