"""Session 11: decode attention rows the carried block ids change (one KV head of <= 64 dims per program:
the 1B layout at batch 64, the Qwen2.5-0.5B layout wherever its plan does not pair its two KV heads),
today's default launch against the one before (128-token tiles, ids loaded in the iteration), CUDA-graph
replays, two rounds interleaved, SDPA beside them in the first.

Ran on the code at 58e1938 (call 13); taken back after it, with DecodeLaunch.carry_block_ids.

    python3 benchmarks/gpu/session11_carry_table.py --out $OUT/carry-table.json
"""

from __future__ import annotations

import argparse
import json

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

CASES = [("llama-3.2-1b", 64, c) for c in (512, 528, 576)] + [
    ("qwen", 16, 1024), ("qwen", 64, 1024), ("qwen", 16, 4096), ("qwen", 256, 4096), ("qwen", 256, 16384),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    if "carry_block_ids" not in DecodeLaunch.__dataclass_fields__:
        raise SystemExit("needs DecodeLaunch.carry_block_ids: the code at 58e1938 (taken back after call 13)")
    before = DecodeLaunch(block_n=128, num_warps=4, num_stages=3, carry_block_ids=False)  # type: ignore[call-arg]
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows: list[dict] = []
    for rnd in range(2):
        for heads, batch, context in CASES:
            for name, launch in (("before", before), ("now", DecodeLaunch())):
                row = bench_decode(heads, batch, context, 16, "bf16", device, copy_bw, launch=launch,
                                   with_sdpa=rnd == 0 and name == "now")  # fmt: skip
                row |= {"variant": name, "round": rnd}
                rows.append(row)
                print(f"r{rnd} {heads} b{batch} c{context} {name}: {row['ms_graph'] * 1e3:.1f} us,"
                      f" {row['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
            with open(args.out, "w") as f:
                json.dump({"copy_bytes_per_s": copy_bw, "note": args.note, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
