"""Session 14: decode attention of the Qwen3-0.6B layout (16 query / 8 KV heads of 128) at batch 64, the
step that sits at 1.33x of its floor, where attention reads ~80% of the step's bytes. No earlier sweep
covered this layout at a decode step's contexts (session 11's were the 1B's and the 8B's). Times the
kernel's own plan and 1-2 splits x 32/64/128-token tiles x 4/8 warps x 2-4 stages, and two KV heads per
program, at contexts 528 and 544 (a step's lie in 513-544), CUDA-graph replays, two rounds interleaved.

    python3 benchmarks/gpu/session14_qwen3_attention.py --out $OUT/qwen3-attention.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench import kernels
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CONTEXTS = (528, 544)
kernels.HEAD_LAYOUTS["qwen3-0.6b"] = (16, 8, 128)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    # (KV heads per program, splits, tokens per tile, warps, stages); None: the kernel's own plan
    variants: list[tuple[int, int, int, int, int] | None] = [None]
    variants += [(1, *v) for v in itertools.product((1, 2), (32, 64, 128), (4, 8), (2, 3, 4))]
    variants += [(2, 1, *v) for v in itertools.product((32, 64), (4, 8), (2, 3))]
    rows: list[dict] = []
    for rnd in range(2):
        for context in CONTEXTS:
            for v in variants:
                if v is None:
                    launch, splits = None, None
                else:
                    launch = DecodeLaunch(
                        block_n=v[2], num_warps=v[3], num_stages=v[4], kv_heads_per_program=v[0]
                    )
                    splits = v[1]
                try:
                    row = bench_decode("qwen3-0.6b", args.batch, context, 16, "bf16", device, copy_bw,
                                       launch=launch, num_splits=splits, with_sdpa=False)  # fmt: skip
                except Exception as exc:  # a launch the compiler refuses (shared memory)
                    print(f"{v}: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
                    continue
                row["variant"] = "default" if v is None else list(v)
                row["round"] = rnd
                rows.append(row)
                print(f"r{rnd} b{args.batch} c{context} {row['variant']}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            with open(args.out, "w") as f:  # after every group: a call cut short keeps what it measured
                json.dump({"copy_bytes_per_s": copy_bw, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
