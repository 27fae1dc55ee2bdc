"""Session 21: can the Qwen2.5-0.5B layout's decode beat SDPA from 64 x 4k up (issue 5)?

Session 19's table put it at 1.00-1.10x of SDPA there (.81-.96 of copy bandwidth, SDPA .90-.99). The
plan (``choose_decode_plan``) splits 64-sequence rows five ways with both KV heads in one program
(64-token tiles, 3 stages) and runs 256-sequence rows in one split, one KV head a program, carrying
block ids in 32-token tiles. Earlier sweeps (issue5-kvblock-h100.json, kernels-sweep-h100.json) tried
3-6 splits and 2-3 stages; never one split with both heads a program (128 programs, each streaming
1 MB at 64 x 4k: no merge at all), nor deeper pipelines at 64-token tiles.

    python3 benchmarks/gpu/session21_qwen_decode.py OUT.json [single|deep|warps]

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


def main() -> None:
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows: list[dict[str, Any]] = []

    def run(label: str, heads: str = "qwen", batch_: int = 0, context_: int = 0, **kwargs: Any) -> None:
        try:
            row = bench_decode(
                heads, batch_ or batch, context_ or context, 16, "bf16", device, copy_bw, **kwargs
            )
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

    if len(sys.argv) > 2 and sys.argv[2] in ("deep", "warps"):
        for heads, batch, context in DEEP_SHAPES:
            print(f"== {heads} {batch} x {context}", flush=True)
            run("plan", heads, batch, context)
            for splits, kv, n, w, st, carry in DEEP_PLANS if sys.argv[2] == "deep" else WARP_PLANS:
                launch = DecodeLaunch(
                    block_n=n, num_warps=w, num_stages=st, kv_heads_per_program=kv, carry_block_ids=carry
                )
                label = f"{kv} heads {n}x{w}w{st}s carry={carry}"
                run(label, heads, batch, context, launch=launch, num_splits=splits, with_sdpa=False)
            run("plan again", heads, batch, context)
            torch.cuda.empty_cache()
        SHAPES.clear()
    if len(sys.argv) > 2 and sys.argv[2] == "single":
        for heads, batch, context in SINGLE_SHAPES:
            print(f"== {heads} {batch} x {context}", flush=True)
            kv = 2
            for label, kwargs in [
                ("plan", {}),
                *(
                    (
                        f"{kv} heads {n}x{w}w{st}s",
                        {
                            "launch": DecodeLaunch(
                                block_n=n,
                                num_warps=w,
                                num_stages=st,
                                kv_heads_per_program=kv,
                                carry_block_ids=False,
                            ),
                            "num_splits": 1,
                            "with_sdpa": False,
                        },
                    )
                    for n, w, st in SINGLE_TILES
                ),
                ("plan again", {}),
            ]:
                run(label, heads, batch, context, **kwargs)
            torch.cuda.empty_cache()
        SHAPES.clear()
    batch = context = 0
    for batch, context in SHAPES:
        print(f"== qwen {batch} x {context}", flush=True)
        run("plan")
        for splits in (1, 2, 3, 5, 8):
            for block_n, warps, stages in TILES:
                launch = DecodeLaunch(
                    block_n=block_n, num_warps=warps, num_stages=stages, kv_heads_per_program=2,
                    carry_block_ids=False,
                )  # fmt: skip
                run(
                    f"both heads {block_n}x{warps}w{stages}s",
                    launch=launch,
                    num_splits=splits,
                    with_sdpa=False,
                )
        for splits in (1, 2, 4):
            for block_n, carry in ((32, True), (64, True), (128, False), (64, False)):
                launch = DecodeLaunch(block_n=block_n, kv_heads_per_program=1, carry_block_ids=carry)
                run(f"one head {block_n} carry={carry}", launch=launch, num_splits=splits, with_sdpa=False)
        run("plan again")
        torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump(
            {"device": torch.cuda.get_device_name(), "copy_bandwidth": copy_bw, "rows": rows}, f, indent=1
        )


if __name__ == "__main__":
    main()
