"""Session 11: with the next tile's block ids carried one iteration ahead (``decode.CARRY_BLOCK_IDS``),
``num_stages`` finally sets how many K/V tiles are in flight, so the launch sweeps of sessions 3-5 (where
it changed nothing: one buffer whatever the depth) are redone: tile, depth and KV heads per program
against the kernel's own plan without carried ids, at the decode-step shapes of issue 6 (contexts that
end inside a tile, as a decode step's do). CUDA-graph replays, two rounds interleaved.

Ran on b27df98 with the decode.py of 3f061fb (call 12), which has the switch.

    python3 benchmarks/gpu/session11_carry_sweep.py --out $OUT/carry-sweep.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch

from pagedllm.attention.triton import decode
from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CASES = [("llama-3.2-1b", 64, 528), ("llama-3.2-1b", 256, 528), ("llama-3.2-1b", 64, 512),
         ("llama", 64, 1040), ("llama", 16, 4096)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    if not hasattr(decode, "CARRY_BLOCK_IDS"):
        raise SystemExit("needs decode.CARRY_BLOCK_IDS: the code at 3f061fb (taken back in b27df98)")
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows: list[dict] = []
    variants: list[tuple[int, int, int] | None] = [None]  # None: the kernel's own plan, ids in the iteration
    variants += list(itertools.product((32, 64, 128), (3, 4, 5), (1, 2)))
    for rnd in range(2):
        for heads, batch, context in CASES:
            for v in variants:
                decode.CARRY_BLOCK_IDS = v is not None
                launch = DecodeLaunch()
                if v is not None:  # splits: as the kernel would choose for that many KV heads per program
                    block_n, stages, kv_per_prog = v
                    launch = DecodeLaunch(block_n=block_n, num_warps=4, num_stages=stages,
                                          kv_heads_per_program=kv_per_prog)  # fmt: skip
                try:
                    row = bench_decode(heads, batch, context, 16, "bf16", device, copy_bw, launch=launch,
                                       with_sdpa=False)  # fmt: skip
                except Exception as e:  # a launch that does not fit (shared memory) is skipped
                    print(f"{heads} b{batch} c{context} {v}: {type(e).__name__}")
                    continue
                row |= {"variant": "default, ids in the iteration" if v is None else list(v), "round": rnd}
                rows.append(row)
                print(f"r{rnd} {heads} b{batch} c{context} {row['variant']}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            with open(args.out, "w") as f:
                json.dump({"copy_bytes_per_s": copy_bw, "note": args.note, "rows": rows}, f, indent=1)
    decode.CARRY_BLOCK_IDS = False


if __name__ == "__main__":
    main()
