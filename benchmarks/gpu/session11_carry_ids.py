"""Session 11: decode attention with the next tile's block ids loaded one iteration ahead
(``decode.CARRY_BLOCK_IDS``) against loading them in the iteration that uses them.

Compiled for sm_90, the kernel's K/V loads hang on the block-id load of the same iteration, and Triton's
pipeliner gives them one shared-memory buffer: a tile's K/V load starts only when the previous tile's
math has read its buffer. Carried ids give them ``num_stages - 1`` buffers. Times the kernel's own plan
both ways, and the carried variant at 2-4 stages, for the 1B layout at contexts that end on and inside a
tile and the issue-5 layouts' long rows; CUDA-graph replays, two rounds interleaved.

Ran on the code at 3f061fb (call 11); taken back in b27df98, which removed the switch.

    python3 benchmarks/gpu/session11_carry_ids.py --out $OUT/carry-ids.json
"""

from __future__ import annotations

import argparse
import json

import torch

from pagedllm.attention.triton import decode
from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CASES = [("llama-3.2-1b", b, c) for b in (64, 256) for c in (512, 528, 576)] + [
    ("llama", 64, 4096), ("llama", 16, 4096), ("qwen", 64, 4096), ("qwen", 256, 4096), ("qwen", 64, 16384),
]  # fmt: skip


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
    variants = [("ids in the iteration", False, None), ("carried ids", True, None)]
    variants += [(f"carried ids, {st} stages", True, st) for st in (2, 4)]
    for rnd in range(2):
        for heads, batch, context in CASES:
            for name, carry, stages in variants:
                decode.CARRY_BLOCK_IDS = carry
                launch = DecodeLaunch(num_stages=stages)
                try:
                    row = bench_decode(heads, batch, context, 16, "bf16", device, copy_bw, launch=launch,
                                       with_sdpa=rnd == 0 and name == "carried ids")  # fmt: skip
                except Exception as e:  # a launch that does not fit (shared memory) is skipped
                    print(f"{heads} b{batch} c{context} {name}: {type(e).__name__}: {str(e)[:100]}")
                    continue
                row |= {"variant": name, "round": rnd}
                rows.append(row)
                print(f"r{rnd} {heads} b{batch} c{context} {name}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            with open(args.out, "w") as f:
                json.dump({"copy_bytes_per_s": copy_bw, "note": args.note, "rows": rows}, f, indent=1)
    decode.CARRY_BLOCK_IDS = True


if __name__ == "__main__":
    main()
