"""Session 11: decode attention of the Llama-3.2-1B layout (32 query / 8 KV heads of 64) with four or eight
KV heads per program, which no earlier sweep tried (sessions 5 and 10 stopped at two).

More KV heads per program read longer contiguous rows (4 x 64 dims: 512 bytes a token) in fewer
programs (256 x 8 / 4 = 512 at batch 256: one wave on 132 SMs), at the cost of tensor-core work on the
block-diagonal query (free at decode). Against the kernel's own plan, at contexts that end on and inside
a tile; CUDA-graph replays, two rounds interleaved.

    python3 benchmarks/gpu/session11_joint_sweep.py --out $OUT/joint-sweep.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CASES = [(b, c) for b in (256, 64) for c in (512, 528)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows: list[dict] = []
    variants: list[tuple[int, int, int, int] | None] = [None]  # None: the kernel's own plan
    variants += list(itertools.product((2, 4, 8), (32, 64, 128), (2, 3), (4, 8)))
    for rnd in range(2):
        for batch, context in CASES:
            for v in variants:
                launch = DecodeLaunch()
                if v is not None:
                    kv_per_prog, block_n, stages, warps = v
                    launch = DecodeLaunch(block_n=block_n, num_warps=warps, num_stages=stages,
                                          kv_heads_per_program=kv_per_prog)  # fmt: skip
                try:
                    row = bench_decode("llama-3.2-1b", batch, context, 16, "bf16", device, copy_bw,
                                       launch=launch, with_sdpa=False)  # fmt: skip
                except Exception as e:  # a launch that does not fit (shared memory, registers) is skipped
                    print(f"b{batch} c{context} {v}: {type(e).__name__}: {str(e)[:80]}")
                    continue
                row |= {"variant": "default" if v is None else list(v), "round": rnd}
                rows.append(row)
                print(f"r{rnd} b{batch} c{context} {row['variant']}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            with open(args.out, "w") as f:
                json.dump({"copy_bytes_per_s": copy_bw, "note": args.note, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
