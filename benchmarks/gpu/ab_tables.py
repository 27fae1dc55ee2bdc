"""The A/B tables of a GPU call, from its JSON, as Markdown for docs/PERFORMANCE.md.

python3 benchmarks/gpu/ab_tables.py steps MERGED.json
    `bench decode` runs merged by merge_json.py under names MODEL-VARIANT-ROUND: GPU ms per (model,
    batch) and variant, the rounds side by side, then each run's copy bandwidth (the floor's).
python3 benchmarks/gpu/ab_tables.py kernels VARIANT=KERNELS.json ...
    `bench kernels` tables of one run each: decode graph-replay us per row and variant, with each
    variant's ratio to the first and SDPA's time beside them.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def steps_table(merged: dict[str, Any]) -> list[str]:
    gpu: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    bandwidths: list[str] = []
    variants: list[str] = []
    for name in sorted(merged, key=lambda n: int(n.rsplit("-", 1)[1])):  # round 1 first
        model_variant, _ = name.rsplit("-", 1)
        run = merged[name]
        model = Path(run["model"]).stem
        variant = model_variant[len(model) + 1 :]
        if variant not in variants:
            variants.append(variant)
        for row in run["rows"]:
            gpu[(model, row["batch"])][variant].append(row["gpu_ms"])
        bandwidths.append(f"{name} {run['rows'][0]['copy_bytes_per_s'] / 1e12:.3f}")
    lines = ["| model, batch | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for (model, batch), by_variant in sorted(gpu.items()):
        cells = [" / ".join(f"{ms:.3f}" for ms in by_variant.get(v, [])) or "-" for v in variants]
        lines.append(f"| {model}, {batch} | " + " | ".join(cells) + " |")
    return [*lines, "", "copy bandwidth TB/s (the floor's): " + ", ".join(bandwidths)]


def kernels_table(runs: dict[str, dict[str, Any]]) -> list[str]:
    names = list(runs)
    cells: dict[tuple[str, int, int, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for variant, run in runs.items():
        for row in run["rows"]:
            if row["kernel"] == "decode":
                key = (row["heads"].split()[0], row["batch"], row["context"], row["block_size"])
                cells[key][variant] = row
    head = "| heads | batch x ctx | " + " | ".join(f"{n} us" for n in names) + " | SDPA us | plan (first) |"
    lines = [head, "|---" * (len(names) + 4) + "|"]
    for (heads, batch, context, _), by_variant in sorted(cells.items()):
        first = by_variant.get(names[0])
        base = first["ms_graph"] if first else None
        out = []
        for n in names:
            row = by_variant.get(n)
            if row is None or row["ms_graph"] is None:
                out.append("-")
                continue
            ratio = f" ({row['ms_graph'] / base:.3f})" if base and n != names[0] else ""
            out.append(f"{row['ms_graph'] * 1e3:.1f}{ratio}")
        sdpa = first.get("sdpa_ms_graph") if first else None
        plan = "-" if first is None else f"{first['kv_heads_per_program']} kv, {first['num_splits']} splits"
        sdpa_cell = "-" if sdpa is None else f"{sdpa * 1e3:.1f}"
        lines.append(f"| {heads} | {batch} x {context} | " + " | ".join(out) + f" | {sdpa_cell} | {plan} |")
    return lines


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "steps":
        print("\n".join(steps_table(json.loads(Path(argv[1]).read_text()))))
    elif len(argv) >= 2 and argv[0] == "kernels":
        runs = {}
        for arg in argv[1:]:
            variant, path = arg.split("=", 1)
            runs[variant] = json.loads(Path(path).read_text())
        print("\n".join(kernels_table(runs)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
