"""Session 13: decode attention of the Llama-3.2-1B layout (32 query / 8 KV heads of 64) at batch 64, split
over the context. The plan never splits there (512 programs already fill the GPU about twice), so no
earlier sweep tried it (session 11's ragged sweep kept one split); a program's serial chain of tiles is
what session 11 found the time to follow. Times the default plan and 2-4 splits (the fused merge) with
64- and 128-token tiles at 2 and 3 stages, contexts 512, 528 and 544 (a decode step's lie in 513-544),
CUDA-graph replays, two rounds interleaved.

    python3 benchmarks/gpu/session13_split_sweep.py --out $OUT/split-sweep.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CONTEXTS = (512, 528, 544)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    variants: list[tuple[int, int, int] | None] = [None]  # None: the kernel's own plan
    variants += list(itertools.product((2, 3, 4), (64, 128), (2, 3)))
    rows: list[dict] = []
    for rnd in range(2):
        for context in CONTEXTS:
            for v in variants:
                launch, splits = (
                    (None, None) if v is None else (DecodeLaunch(block_n=v[1], num_stages=v[2]), v[0])
                )
                row = bench_decode("llama-3.2-1b", args.batch, context, 16, "bf16", device, copy_bw,
                                   launch=launch, num_splits=splits, with_sdpa=False)  # fmt: skip
                row["variant"] = "default" if v is None else list(v)
                row["round"] = rnd
                rows.append(row)
                print(f"r{rnd} b{args.batch} c{context} {row['variant']}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            with open(args.out, "w") as f:  # after every group: a call cut short keeps what it measured
                json.dump({"copy_bytes_per_s": copy_bw, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
