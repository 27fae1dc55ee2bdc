"""Session 23: decode attention's K/V tiles by TMA (``DecodeLaunch(tma=True)``), against the plan's launch.

Sessions 11-21 found decode attention short of the copy bandwidth on short launches: the Llama-3.2-1B
and Qwen3-0.6B layouts at a decode step's 64 x 528 (0.74-0.87), the Qwen2.5-0.5B layout at 64 x 4k
(0.83, against SDPA's ~0.90), with one or two cp.async tiles in flight per program (session 17's
SASS). TMA copies take no registers and no per-thread addresses, so a program can keep many tiles in
flight: one block (16 tokens) a tile, its id carried from the iteration before, ``num_stages`` deep.
Each shape runs the plan's launch (with SDPA) and TMA launches of the same plan (KV heads a program,
splits) by depth and warps, plus, for the Qwen layout's long rows, plans with fewer programs.

Taken back after calls 1-3: this script runs on 6749555's tree (``benchmarks/results/session23/
decode-tma-attempt.diff`` on 17ceb41), not on main, whose ``DecodeLaunch`` has no ``tma`` field.

    python3 benchmarks/gpu/session23_tma_decode.py OUT.json [1|2]  # on an H100: call 1's or 2's (default)
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch
from kernel_costs import print_regs  # beside this script

from pagedllm.attention.triton.decode import DecodeLaunch, choose_decode_plan
from pagedllm.bench.kernels import HEAD_LAYOUTS, bench_decode, copy_bandwidth

SHAPES = [
    ("llama-3.2-1b", 64, 528),
    ("qwen3-0.6b", 64, 528),
    ("qwen", 64, 4096),
    ("qwen", 64, 16384),
    ("qwen", 256, 4096),
    ("llama-3.2-1b", 256, 528),
    ("qwen3-0.6b", 256, 528),
]
CALL1_SHAPES = [*SHAPES[:5], ("qwen", 256, 16384), *SHAPES[5:], ("llama", 64, 4096)]
# Call 1: (warps, stages) of 16-token tiles, and for the Qwen layout's long rows (splits, KV heads a
# program, warps, stages) beside the plan's. Deeper was slower everywhere and one program an SM
# (128 programs at 64 x 4k) ran at 0.30 of copy bandwidth: a program's iterations, not its copies, set
# the pace (with four warps, each 16-column row max and sum crosses warps).
CALL1_DEPTHS = [(4, 3), (4, 4), (4, 6), (4, 8), (2, 4), (2, 8)]
CALL1_FEW_PROGRAMS = [(1, 1, 4, 8), (1, 1, 4, 12), (2, 1, 4, 8), (1, 2, 4, 8), (2, 2, 4, 8), (3, 2, 4, 6)]
# Call 2: one warp a program (its reductions stay in the warp), the plan's splits and twice as many.
DEPTHS = [(1, 3), (1, 4), (1, 6), (1, 8)]


Variant = tuple[int, int, int, int]  # (splits, KV heads a program, warps, stages)


def tma_variants(call: str, heads: str, context: int, kv: int, splits: int) -> list[Variant]:
    """A shape's TMA launches in call 1 or 2, around its plan's KV heads a program and splits."""
    long_qwen = heads == "qwen" and context >= 4096
    if call == "1":
        return [(splits, kv, w, st) for w, st in CALL1_DEPTHS] + (CALL1_FEW_PROGRAMS if long_qwen else [])
    variants = [(sp, kv, w, st) for sp in (splits, 2 * splits) for w, st in DEPTHS]
    return variants + ([(sp, 1, 1, st) for sp in (5, 10) for st in (4, 8)] if long_qwen else [])


def main() -> None:
    out_path = sys.argv[1]
    call = sys.argv[2] if len(sys.argv) > 2 else "2"
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    rows: list[dict[str, Any]] = []

    def record(label: str, row: dict[str, Any]) -> None:
        row["variant"] = label
        rows.append(row)
        sdpa = f" sdpa {row['sdpa_ms_graph'] * 1e3:.1f}" if row.get("sdpa_ms_graph") else ""
        print(f"{row['heads']:>28} {row['batch']:>4} x {row['context']:>6} {label:>32}: "
              f"graph {row['ms_graph'] * 1e3:8.1f} us  bw {row['bandwidth_fraction_graph']:.3f}{sdpa}"
              f"  err {row['max_rel_error_vs_sdpa']}", flush=True)  # fmt: skip
        with open(out_path, "w") as f:
            json.dump({"copy_bandwidth": copy_bw, "rows": rows}, f, indent=1)

    for heads, batch, context in CALL1_SHAPES if call == "1" else SHAPES:
        common = dict(heads=heads, batch=batch, context=context, block_size=16, dtype_name="bf16",
                      device=device, copy_bw=copy_bw)  # fmt: skip
        record("plan", bench_decode(**common))
        kv, splits = choose_decode_plan(batch, HEAD_LAYOUTS[heads][1], HEAD_LAYOUTS[heads][2], context, sms)
        variants = tma_variants(call, heads, context, kv, splits)
        for sp, kvp, w, st in variants:
            launch = DecodeLaunch(block_n=16, num_warps=w, num_stages=st, kv_heads_per_program=kvp, tma=True)
            try:
                row = bench_decode(**common, launch=launch, num_splits=sp, with_sdpa=heads != "llama")
            except Exception as e:  # a variant that does not compile or fit: say so, go on
                print(f"{heads} {batch}x{context} tma {sp}s {kvp}kv {w}w {st}st: {e!r}"[:400], flush=True)
                continue
            record(f"tma {sp} splits {kvp} kv {w}w {st}st", row)
    print_regs()


if __name__ == "__main__":
    main()
