"""Session 19: the prefill kernel with a host-made tile map against its on-device search, GPU time only.

Call 7 (session19_prefill_sweep.py) found no tile plan faster than the default, and the default further
behind SDPA the more programs a launch has for the same FLOPs (16 x 1k: 8,192 programs, 1.39x; 1 x 4k:
2,048, 1.12x). Each program first finds its sequence: a load of the sequence starts, then its start and
length, then its cached length, three round trips before the first K/V or Q load. With a tile map it
reads all of that in one, the grid has no idle programs, and the tiles that see the most keys go first
across the whole batch. Llama layout (32 / 8 heads of 128, TMA) and Qwen2.5 (14 / 2 of 64, pointers),
CUDA-graph replays beside SDPA, two rounds.

It needs the tile map, which main does not have: apply results/session19/prefill-tile-map-experiment.diff
first. Session 19's call 8 ran it with a third variant of 64 x 32 tiles, 3 stages (call8-tile-map.json,
seven shapes). Call 9 (call9-tile-map-order.json) meant to run "map seq-major" as below, but the
reordering had not reached the script (an edit that did not apply): its "map seq-major" rows are the
"map" variant run twice. As it is now (the order fixed, and the Llama-3.2-1B layout, 32 / 8 heads of 64,
added), the script has not run. With results/session19/prefill-tile-map-hinted.diff instead, the map's
q_off carries a multiple-of-16 hint, as the search's computed one does.

    python3 benchmarks/gpu/session19_tile_map.py OUT.json
"""

from __future__ import annotations

import json
import sys

import torch

from pagedllm.attention.triton.prefill import PrefillLaunch, PrefillTileMap, prefill_tile_map
from pagedllm.bench.kernels import graph_ms, make_prefill_case

SHAPES = [(16, 1024), (4, 1024), (64, 1024), (1, 4096), (16, 4096)]
VARIANTS = {"search": (None, False), "map": (None, True), "map seq-major": (None, True)}


def in_search_order(tiles: PrefillTileMap) -> PrefillTileMap:
    """The same tiles in the search's order: sequence by sequence, each sequence's longest first (the map
    puts the longest first across the whole batch)."""
    rows = tiles.rows.cpu()
    order = sorted(range(len(rows)), key=lambda i: (int(rows[i, 0]), -int(rows[i, 4])))
    return PrefillTileMap(rows[order].to(tiles.rows.device), tiles.block_q)


def measure(heads: str, batch: int, context: int, device: torch.device) -> list[dict]:
    case = make_prefill_case(heads, batch, context, 16, torch.bfloat16, device)
    md = case.paged.metadata
    ref = case.sdpa().transpose(1, 2).reshape(case.query.shape).float()
    rows = []
    for rnd in (1, 2):
        sdpa_us = (graph_ms([case.sdpa], device) or 0.0) * 1e3
        print(f"== {heads} {batch} x {context} round {rnd}: SDPA {sdpa_us:.1f} us", flush=True)
        for name, (plan, use_map) in VARIANTS.items():
            launch = PrefillLaunch() if plan is None else PrefillLaunch(*plan)
            tiles: PrefillTileMap | None = None
            if use_map:
                tiles = prefill_tile_map(
                    case.query, case.paged.cache, md.query_start_loc_host, md.seq_lens_host,
                    key=case.key, value=case.value, launch=launch,
                )  # fmt: skip
                if name == "map seq-major":
                    tiles = in_search_order(tiles)
            out = torch.full_like(case.query, float("nan"))

            def ours(
                launch: PrefillLaunch = launch, tiles: PrefillTileMap | None = tiles, out: torch.Tensor = out
            ) -> None:
                case.attend(out, launch, tile_map=tiles)

            ours()
            err = ((out.float() - ref).norm() / ref.norm()).item()
            us = (graph_ms([ours], device) or 0.0) * 1e3
            rows.append({"heads": heads, "batch": batch, "context": context, "round": rnd, "variant": name,
                         "us": us, "sdpa_us": sdpa_us, "rel_err": err})  # fmt: skip
            print(f"  {name:14} {us:8.1f} us  x SDPA {us / sdpa_us:.3f}  err {err:.1e}", flush=True)
    return rows


def main() -> None:
    device = torch.device("cuda")
    rows = []
    for heads in ("llama", "qwen", "llama-3.2-1b"):
        for batch, context in SHAPES:
            rows += measure(heads, batch, context, device)
            torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
