"""Session 21: can the Qwen2.5-0.5B layout's decode beat SDPA from 64 x 4k up (issue 5)?

Session 19's table put it at 1.00-1.10x of SDPA there (.81-.96 of copy bandwidth, SDPA .90-.99). The
plan (``choose_decode_plan``) splits 64-sequence rows five ways with both KV heads in one program
(64-token tiles, 3 stages) and runs 256-sequence rows in one split, one KV head a program, carrying
block ids in 32-token tiles. Earlier sweeps (issue5-kvblock-h100.json, kernels-sweep-h100.json) tried
3-6 splits and 2-3 stages; never one split with both heads a program (128 programs, each streaming
1 MB at 64 x 4k: no merge at all), nor deeper pipelines at 64-token tiles.

    python3 benchmarks/gpu/session21_qwen_decode.py OUT.json [splits|single|deep|warps]  # splits: call 6

``single`` (call 7): call 6 found both KV heads a program in one split with deep pipelines faster than
the plan at 256 x 4k and 16k. Where the plan runs one split, that against the plan, by tile, for the
Qwen layout and for the Llama-3.2-1B layout's pairs of KV heads (the engine's 256-row 1B step).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench.kernels import bench_decode, copy_bandwidth

SHAPES = [(64, 4096), (64, 16384), (256, 4096), (256, 16384)]
SINGLE_SHAPES = [
    ("qwen", 256, 128),
    ("qwen", 256, 512),
    ("qwen", 256, 1024),
    ("qwen", 256, 4096),
    ("qwen", 256, 16384),
    ("qwen", 192, 1024),
    ("qwen", 192, 4096),
    ("llama-3.2-1b", 256, 512),
    ("llama-3.2-1b", 256, 2048),
]
# ``deep`` (call 10): cuDNN's decode kernel at 64 x 4k runs one program per (sequence, KV head) and no
# split (128 programs of 4 warps, 120 registers, 45 KB of shared memory; call 9's ncu) and is faster
# than our five joint splits. Ours in that shape with deeper pipelines. (splits, KV heads a program,
# block_n, warps, stages, carried block ids)
DEEP_SHAPES = [("qwen", 64, 4096), ("qwen", 64, 16384), ("qwen", 256, 4096)]
DEEP_PLANS = [
    (1, 1, 64, 4, 4, True),
    (1, 1, 64, 4, 6, True),
    (1, 1, 64, 4, 8, True),
    (1, 1, 32, 4, 6, True),
    (1, 1, 128, 4, 4, False),
    (1, 1, 128, 4, 5, False),
    (1, 1, 64, 4, 6, False),
    (1, 1, 128, 8, 4, False),
    (2, 1, 64, 4, 6, True),
    (2, 1, 128, 4, 4, False),
]
# ``warps`` (call 11): cuDNN's program splits its 128-key tile over its four warps, each with its own
# softmax and no barrier between them (its name: 16x128x64, 1x4x1 warps). Ours with one or two warps a
# program and more splits, as the nearest Triton can say: every warp streams on its own.
WARP_PLANS = [
    (4, 1, 32, 1, 3, True),
    (4, 1, 64, 1, 3, False),
    (4, 1, 32, 1, 4, True),
    (8, 1, 32, 1, 3, True),
    (4, 1, 64, 2, 3, False),
    (2, 1, 64, 2, 3, False),
    (4, 2, 32, 1, 3, False),
    (8, 2, 32, 1, 3, False),
    (8, 2, 64, 2, 3, False),
    (16, 2, 32, 1, 3, False),
]
SINGLE_TILES = [(64, 4, 3), (64, 4, 4), (64, 4, 6), (128, 4, 2), (128, 4, 3), (256, 4, 1)]
TILES = [(64, 4, 3), (64, 4, 4), (64, 4, 6), (128, 4, 2), (128, 4, 3)]


Variant = tuple[str, dict[str, Any]]  # label, bench_decode's keyword arguments


def launch_variant(label: str, splits: int, **launch: Any) -> Variant:
    return label, {"launch": DecodeLaunch(**launch), "num_splits": splits, "with_sdpa": False}


def call6_variants() -> list[Variant]:
    """Both KV heads a program by splits and tile; one KV head a program by splits, tile and carry."""
    both = [
        launch_variant(
            f"both heads {n}x{w}w{st}s",
            splits,
            block_n=n,
            num_warps=w,
            num_stages=st,
            kv_heads_per_program=2,
            carry_block_ids=False,
        )
        for splits in (1, 2, 3, 5, 8)
        for n, w, st in TILES
    ]
    one = [
        launch_variant(
            f"one head {n} carry={carry}", splits, block_n=n, kv_heads_per_program=1, carry_block_ids=carry
        )
        for splits in (1, 2, 4)
        for n, carry in ((32, True), (64, True), (128, False), (64, False))
    ]
    return both + one


def call7_variants() -> list[Variant]:
    return [
        launch_variant(
            f"2 heads {n}x{w}w{st}s",
            1,
            block_n=n,
            num_warps=w,
            num_stages=st,
            kv_heads_per_program=2,
            carry_block_ids=False,
        )
        for n, w, st in SINGLE_TILES
    ]


def tuple_variants(plans: list[tuple[int, int, int, int, int, bool]]) -> list[Variant]:
    """Calls 10-11: (splits, KV heads a program, block_n, warps, stages, carried block ids)."""
    return [
        launch_variant(
            f"{kv} heads {n}x{w}w{st}s carry={carry}",
            splits,
            block_n=n,
            num_warps=w,
            num_stages=st,
            kv_heads_per_program=kv,
            carry_block_ids=carry,
        )
        for splits, kv, n, w, st, carry in plans
    ]


def main() -> None:
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows: list[dict[str, Any]] = []

    def run(label: str, heads: str, batch: int, context: int, **kwargs: Any) -> None:
        try:
            row = bench_decode(heads, batch, context, 16, "bf16", device, copy_bw, **kwargs)
        except Exception as e:  # a variant that does not compile or fit is a line, not the end
            print(f"  {label}: {type(e).__name__}: {str(e)[:160]}", flush=True)
            return
        row["label"] = label
        rows.append(row)
        sdpa = row["sdpa_ms_graph"]
        print(
            f"  {label:44} kv={row['kv_heads_per_program']} splits={row['num_splits']:<2} "
            f"graph {row['ms_graph'] * 1e3:7.1f} us "
            f"frac {row['bandwidth_fraction_graph']:.3f}"
            + (f"  SDPA {sdpa * 1e3:7.1f} us  x {row['ms_graph'] / sdpa:.3f}" if sdpa else ""),
            flush=True,
        )

    mode = sys.argv[2] if len(sys.argv) > 2 else "splits"
    shapes, variants = {
        "splits": ([("qwen", b, c) for b, c in SHAPES], call6_variants),
        "single": (SINGLE_SHAPES, call7_variants),
        "deep": (DEEP_SHAPES, lambda: tuple_variants(DEEP_PLANS)),
        "warps": (DEEP_SHAPES, lambda: tuple_variants(WARP_PLANS)),
    }[mode]
    for heads, batch, context in shapes:
        print(f"== {heads} {batch} x {context}", flush=True)
        for label, kwargs in [("plan", {}), *variants(), ("plan again", {})]:
            run(label, heads, batch, context, **kwargs)
        torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump(
            {"device": torch.cuda.get_device_name(), "copy_bandwidth": copy_bw, "rows": rows}, f, indent=1
        )


if __name__ == "__main__":
    main()
