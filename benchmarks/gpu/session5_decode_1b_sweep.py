"""Session 5: decode attention for the Llama-3.2-1B layout (32 query / 8 KV heads of 64) at the shapes
of issue 6's decode-step table (batch 64 and 256, context 512), where the step's attention runs at ~80%
of copy bandwidth: tile, warps, stages, KV heads per program and split count, in CUDA-graph replays.

    python3 benchmarks/gpu/session5_decode_1b_sweep.py --out $OUT/decode-1b-sweep.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows = []
    for batch in (256, 64):
        default = bench_decode("llama-3.2-1b", batch, 512, 16, "bf16", device, copy_bw, with_sdpa=True)
        default["variant"] = "default"
        rows.append(default)
        print(
            f"b{batch} default: graph {default['ms_graph']:.4f} ms, {default['bandwidth_fraction_graph']:.3f}"
            f" (sdpa {default['sdpa_ms']})",
            flush=True,
        )
        for block_n, warps, stages, kv_per_prog, splits in itertools.product(
            (32, 64, 128), (2, 4, 8), (2, 3, 4), (1, 2), (1, 2)
        ):
            name = f"b{batch} {block_n}/{warps}/{stages} kv{kv_per_prog} s{splits}"
            launch = DecodeLaunch(block_n=block_n, num_warps=warps, num_stages=stages,
                                  kv_heads_per_program=kv_per_prog)  # fmt: skip
            try:
                row = bench_decode("llama-3.2-1b", batch, 512, 16, "bf16", device, copy_bw, launch=launch,
                                   num_splits=splits, with_sdpa=False)  # fmt: skip
            except Exception as e:  # a launch that does not fit (shared memory) is skipped
                print(f"{name}: {type(e).__name__}")
                continue
            row["variant"] = [block_n, warps, stages, kv_per_prog, splits]
            rows.append(row)
            print(
                f"{name}: graph {row['ms_graph']:.4f} ms, {row['bandwidth_fraction_graph']:.3f}", flush=True
            )
    with open(args.out, "w") as f:
        json.dump({"copy_bytes_per_s": copy_bw, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
