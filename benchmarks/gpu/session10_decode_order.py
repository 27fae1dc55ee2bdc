"""Session 10: does the launch order of decode attention's programs matter? With the cache laid out
[2, blocks, block_size, kv_heads, head_dim], one token's K row holds every KV head side by side, and the
programs of one sequence's KV heads each read their part of it. The grid was (seqs, kv_blocks, splits):
the programs running at the same time are one KV head's of many sequences. ``heads_fastest`` launches
(kv_blocks, seqs, splits): a sequence's KV-head programs run together, reading neighbouring bytes.

CUDA-graph replays over rotating input sets (none in L2), each variant twice, interleaved.

    python3 benchmarks/gpu/session10_decode_order.py --out $OUT/decode-order.json
"""

from __future__ import annotations

import argparse
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench import kernels
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

# (layout, batch, context, variants: name -> (DecodeLaunch, num_splits or None))
# fmt: off
CASES = [
    ("llama-3.2-1b", 256, 512, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
        "kv1 heads-fastest": (DecodeLaunch(kv_heads_per_program=1, heads_fastest=True), 1),
        "kv1 heads-fastest 64/4/3": (DecodeLaunch(64, 4, 3, kv_heads_per_program=1, heads_fastest=True), 1),
        "kv1": (DecodeLaunch(kv_heads_per_program=1), 1),
    }),
    ("llama-3.2-1b", 64, 512, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
        "kv2 heads-fastest": (DecodeLaunch(kv_heads_per_program=2, heads_fastest=True), 1),
    }),
    ("llama-3.2-1b", 64, 1024, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
    }),
    ("llama", 64, 4096, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
    }),
    ("llama", 256, 1024, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
    }),
    ("llama", 16, 4096, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
    }),
    ("qwen", 64, 4096, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
        "kv1 heads-fastest": (DecodeLaunch(kv_heads_per_program=1, heads_fastest=True), None),
        "kv1": (DecodeLaunch(kv_heads_per_program=1), None),
    }),
    ("qwen", 64, 16384, {
        "default": (DecodeLaunch(), None),
        "kv1 heads-fastest": (DecodeLaunch(kv_heads_per_program=1, heads_fastest=True), None),
    }),
    ("qwen", 256, 4096, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
    }),
    ("qwen", 64, 1024, {
        "default": (DecodeLaunch(), None),
        "heads-fastest": (DecodeLaunch(heads_fastest=True), None),
    }),
]
# fmt: on


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    device = torch.device("cuda")
    kernels.HEAD_LAYOUTS["llama-3.2-1b"] = (32, 8, 64)
    copy_bw = copy_bandwidth(device)
    print(f"copy bandwidth {copy_bw / 1e12:.3f} TB/s", flush=True)
    rows = []
    for heads, batch, context, variants in CASES:
        for rnd in range(args.rounds):
            for name, (launch, splits) in variants.items():
                sdpa = rnd == 0 and name == "default"
                row = bench_decode(heads, batch, context, 16, "bf16", device, copy_bw, launch=launch,
                                   num_splits=splits, with_sdpa=sdpa)  # fmt: skip
                row["variant"] = name
                row["round"] = rnd
                rows.append(row)
                print(
                    f"{heads} {batch}x{context} r{rnd} {name:28s} splits {row['num_splits']:2d} "
                    f"kv/prog {row['kv_heads_per_program']}: graph {row['ms_graph'] * 1e3:8.2f} us "
                    f"{row['bandwidth_fraction_graph']:.3f}"
                    + (f"  sdpa graph {row['sdpa_ms_graph'] * 1e3:.2f} us" if sdpa else ""),
                    flush=True,
                )
    with open(args.out, "w") as f:
        meta = {"copy_bytes_per_s": copy_bw, "device": torch.cuda.get_device_name(device)}
        json.dump({**meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
