"""Session 11: decode attention of the Llama-3.2-1B layout (32 query / 8 KV heads of 64) at contexts that
end inside a tile, as a decode step's do.

The engine's profile (call 9) put decode attention at 32.6 us a layer at batch 64 and 105.7 at 256,
against 28.3 and ~99 us for the same kernel in ``bench_decode`` at exactly 512 tokens. A decode step's
sequences hold 513-544 tokens in ``bench decode`` (any count in serving), so their last tile is partly
empty: 5 tiles of 128 tokens instead of 4. This times the default plan and tile / stage / pairing
variants at contexts 512, 528 (one block past 512) and 576, CUDA-graph replays, two rounds interleaved.

    python3 benchmarks/gpu/session11_ragged_decode.py --out $OUT/ragged-decode.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CONTEXTS = (512, 528, 576)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    variants: list[tuple[int, int, int, int] | None] = [None]  # None: the kernel's own plan
    variants += list(itertools.product((32, 64, 128), (4,), (2, 3, 4), (1, 2)))
    rows: list[dict] = []

    def dump() -> None:  # after every group: a call cut short keeps what it measured
        with open(args.out, "w") as f:
            json.dump({"copy_bytes_per_s": copy_bw, "note": args.note, "rows": rows}, f, indent=1)

    for rnd in range(2):
        for batch, context in itertools.product((64, 256), CONTEXTS):
            for v in variants:
                if v is None:
                    launch, splits = None, None
                else:
                    block_n, warps, stages, kv_per_prog = v
                    launch = DecodeLaunch(block_n=block_n, num_warps=warps, num_stages=stages,
                                          kv_heads_per_program=kv_per_prog)  # fmt: skip
                    splits = 1
                try:
                    row = bench_decode("llama-3.2-1b", batch, context, 16, "bf16", device, copy_bw,
                                       launch=launch, num_splits=splits, with_sdpa=False)  # fmt: skip
                except Exception as e:  # a launch that does not fit (shared memory) is skipped
                    print(f"b{batch} c{context} {v}: {type(e).__name__}")
                    continue
                row["variant"] = "default" if v is None else list(v)
                row["round"] = rnd
                rows.append(row)
                print(f"r{rnd} b{batch} c{context} {row['variant']}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            dump()


if __name__ == "__main__":
    main()
