"""Pictures of where the KV memory goes, drawn from a report dict (matplotlib, Agg backend, PNG).

Each ``plot_*`` writes ``NAME.png`` and ``NAME.json`` beside it holding exactly the numbers drawn, and
returns those numbers; they are read from the report, so the picture, its JSON and the report agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# (label, summary key, colour): the parts of the pool, bottom to top.
BREAKDOWN = (
    ("tokens", "pool_token_fraction", "#2b6cb0"),
    ("tail fragmentation", "pool_tail_fraction", "#f6ad55"),
    ("reservation", "pool_reserved_fraction", "#e53e3e"),
    ("other", "pool_other_fraction", "#805ad5"),
    ("free", "pool_free_fraction", "#e2e8f0"),
)
_POLICY_STYLE = {"contiguous": ("#e53e3e", "s"), "paged": ("#2b6cb0", "o")}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise RuntimeError("pictures need matplotlib: pip install 'pagedllm[plots]' (or matplotlib)") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, data: dict[str, Any]) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    fig.clear()
    _pyplot().close(fig)
    path.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


def _style(variant: str) -> tuple[str, str]:
    return _POLICY_STYLE.get(variant.split("-")[0], ("#4a5568", "^"))


def _run_label(run: Mapping[str, Any]) -> str:
    label = f"{run.get('label', '')}\n{run.get('variant', run['config']['kv_policy'])}"
    return label if run["summary"]["num_steps"] else f"{label}\n(no steps)"


def plot_utilization_vs_batch(report: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """KV utilization per batch size and policy (seed-memory): at full length (solid), time avg (dashed)."""
    plt = _pyplot()
    sweep = [r for r in report["runs"] if r.get("study") == "utilization"]
    if not sweep:
        raise ValueError("the report has no seed-memory utilization runs")
    data: dict[str, Any] = {}
    for run in sorted(sweep, key=lambda r: r["params"]["batch_size"]):
        series = data.setdefault(
            run["variant"], {"batch_size": [], "utilization_at_full_length": [], "utilization_time_avg": []}
        )
        series["batch_size"].append(run["params"]["batch_size"])
        series["utilization_at_full_length"].append(run["summary"]["utilization_at_full_length"])
        series["utilization_time_avg"].append(run["summary"]["utilization_time_avg"])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for variant, series in data.items():
        colour, marker = _style(variant)
        full = [100 * v for v in series["utilization_at_full_length"]]
        ax.plot(series["batch_size"], full, color=colour, marker=marker, label=f"{variant}: at full length")
        below = variant.startswith("contiguous")  # its time average runs just above it
        for x, y in zip(series["batch_size"], full, strict=True):
            offset = (0, -13 if below else 6)
            ax.annotate(
                f"{y:.1f}", (x, y), textcoords="offset points", xytext=offset, ha="center", fontsize=8
            )
        avg = [100 * v for v in series["utilization_time_avg"]]
        ax.plot(
            series["batch_size"],
            avg,
            color=colour,
            marker=marker,
            linestyle="--",
            alpha=0.6,
            label=f"{variant}: time average",
        )
    ax.set_xlabel("batch size (requests admitted together)")
    ax.set_ylabel("KV utilization: slots holding tokens / slots held (%)")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    ax.set_title("seed-memory: KV cache utilization, reservation vs paging", fontsize=10)
    return _save(fig, path, data)


def plot_memory_breakdown(
    report: Mapping[str, Any], path: Path, runs: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Where the pool goes, averaged over each run's steps: one stacked bar per run, parts of 100%.

    By default the runs on the report's fixed pool (the capacity runs of seed-memory, whose pool is the
    one asked for), else every run.
    """
    plt = _pyplot()
    if runs is None:
        runs = [r for r in report["runs"] if r.get("study") == "capacity"] or report["runs"]
    runs = list(runs)
    if not runs:
        raise ValueError("no runs to draw")
    data: dict[str, Any] = {"labels": [_run_label(r).replace("\n", " ") for r in runs]}
    for name, key, _ in BREAKDOWN:
        data[name] = [r["summary"][key] for r in runs]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(runs) + 2), 4.5))
    xs = list(range(len(runs)))
    bottom = [0.0] * len(runs)
    for name, _, colour in BREAKDOWN:
        values = [100 * v for v in data[name]]
        if name == "other" and not any(values):
            continue
        ax.bar(xs, values, bottom=bottom, color=colour, label=name, edgecolor="white", linewidth=0.5)
        for x, b, v in zip(xs, bottom, values, strict=True):
            if v >= 6 and runs[x]["summary"]["num_steps"]:
                ax.text(
                    x,
                    b + v / 2,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if name in ("tokens", "reservation") else "black",
                )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for x, run in zip(xs, runs, strict=True):
        if not run["summary"]["num_steps"]:
            # All free, but over no time at all: say why the bar holds nothing.
            why = f"{run.get('num_rejected', 0)} of {run.get('num_requests', 0)}\nrequests\nrejected"
            ax.text(x, 50, f"no steps:\n{why}", ha="center", va="center", fontsize=7, color="#4a5568")
    ax.set_xticks(xs)
    ax.set_xticklabels([_run_label(r) for r in runs], fontsize=7)
    ax.set_ylabel("share of the KV pool, time average (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title("Where the KV memory goes", fontsize=10)
    return _save(fig, path, data)


# The most cells a block map draws: 64 x 256.
MAX_BLOCK_MAP_CELLS = 64 * 256


def _mix(colour: tuple[float, float, float], strength: float) -> tuple[float, float, float]:
    """``colour`` blended with white: strength 1 is the colour, 0 is white."""
    r, g, b = colour
    return (1 - strength + strength * r, 1 - strength + strength * g, 1 - strength + strength * b)


def plot_block_map(
    report: Mapping[str, Any], path: Path, runs: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """One cell per physical block, coloured by the request holding it: solid when full, paler when
    partly filled (the tail), faint when reserved with no token yet; grey when free; x when shared."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    runs = [r for r in (report["runs"] if runs is None else runs) if "block_map" in r]
    if not runs:
        raise ValueError("no run has a block map (simulate with --block-map-step)")
    palette = [tuple(c[:3]) for c in plt.get_cmap("tab20").colors]
    free_colour = (0.93, 0.93, 0.93)
    data: dict[str, Any] = {"maps": []}
    num_blocks = max(len(r["block_map"]["owner"]) for r in runs)
    # A cell per block up to MAX_BLOCK_MAP_CELLS; beyond, a cell per run of `group` blocks (a 240 GiB pool
    # of small blocks drew an 80,000-pixel-tall picture in 3.9 GB of memory).
    group = math.ceil(num_blocks / MAX_BLOCK_MAP_CELLS)
    num_cells = math.ceil(num_blocks / group)
    num_cols = 64 if num_cells >= 1024 else 32
    num_rows = math.ceil(num_cells / num_cols)
    panel_cols = min(3, len(runs))
    panel_rows = math.ceil(len(runs) / panel_cols)
    fig, axes = plt.subplots(
        panel_rows,
        panel_cols,
        figsize=(4.2 * panel_cols, 0.5 + panel_rows * (0.55 + 3.9 * num_rows / num_cols)),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat[len(runs) :]:
        ax.set_axis_off()
    for ax, run in zip(axes.flat, runs, strict=False):
        block_map = run["block_map"]
        block_size = block_map["block_size"]
        owners, holders, filled = block_map["owner"], block_map["num_holders"], block_map["num_filled"]
        image = [[(1.0, 1.0, 1.0)] * num_cols for _ in range(num_rows)]
        shared_x, shared_y = [], []
        counts = {"free": 0, "full": 0, "tail": 0, "reserved": 0, "shared": 0}
        for block_id, owner in enumerate(owners):
            if owner < 0:
                counts["free"] += 1
                continue
            fill = filled[block_id]
            counts["full" if fill == block_size else "tail" if fill else "reserved"] += 1
            counts["shared"] += holders[block_id] > 1
        for cell in range(math.ceil(len(owners) / group)):
            first = cell * group
            row, col = divmod(cell, num_cols)
            held = [b for b in range(first, min(first + group, len(owners))) if owners[b] >= 0]
            if not held:
                image[row][col] = free_colour
                continue
            # A cell is its first held block's request, as solid as the share of its slots holding tokens
            # (one block: full, the tail's fill, or faint when reserved).
            colour = palette[owners[held[0]] % len(palette)]
            fill_share = sum(filled[b] for b in held) / (group * block_size)
            if fill_share == 1:
                image[row][col] = colour
            elif fill_share:
                image[row][col] = _mix(colour, 0.35 + 0.4 * fill_share)
            else:
                image[row][col] = _mix(colour, 0.15)
            if any(holders[b] > 1 for b in held):
                shared_x.append(col)
                shared_y.append(row)
        ax.imshow(image, interpolation="nearest", aspect="equal")
        if shared_x:
            ax.scatter(shared_x, shared_y, marker="x", s=6, linewidths=0.6, color="black")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(
            f"{run.get('variant', '')}, {run.get('label', '')}, step {block_map['step']}\n"
            f"{counts['full']} full, {counts['tail']} tail, {counts['reserved']} reserved-empty, "
            f"{counts['free']} free, {counts['shared']} shared",
            fontsize=8,
        )
        data["maps"].append(
            {"label": run.get("label"), "variant": run.get("variant"), "counts": counts, **block_map}
        )
    legend = [
        Patch(color=palette[0], label="full block (colour = request)"),
        Patch(color=_mix(palette[0], 0.5), label="partly filled: the tail"),
        Patch(color=_mix(palette[0], 0.15), label="reserved, no token yet"),
        Patch(color=free_colour, label="free"),
    ]
    if any(m["counts"]["shared"] for m in data["maps"]):
        legend.append(Patch(facecolor="white", edgecolor="black", label="x: shared by several requests"))
    fig.legend(handles=legend, loc="outside lower center", ncol=len(legend), fontsize=7, frameon=False)
    cell = "block" if group == 1 else f"{group} blocks"
    fig.suptitle(f"KV pool, one cell per {cell} of {runs[0]['block_map']['block_size']} tokens", fontsize=10)
    data["blocks_per_cell"] = group
    return _save(fig, path, data)


def write_plots(report: Mapping[str, Any], out_dir: Path, prefix: str) -> list[Path]:
    """Every picture the report has data for, as ``out_dir/PREFIX-*.png`` (+ ``.json``); the paths."""
    out_dir = Path(out_dir)
    written = []
    runs = report["runs"]
    if any(r.get("study") == "utilization" for r in runs):
        path = out_dir / f"{prefix}-utilization.png"
        plot_utilization_vs_batch(report, path)
        written.append(path)
    if runs:
        path = out_dir / f"{prefix}-breakdown.png"
        plot_memory_breakdown(report, path)
        written.append(path)
    if any("block_map" in r for r in runs):
        path = out_dir / f"{prefix}-block-map.png"
        plot_block_map(report, path)
        written.append(path)
    return written


def plot_step_series(
    runs: Sequence[Mapping[str, Any]], path: Path, column: str = "utilization", title: str = ""
) -> dict[str, Any]:
    """One per-step series (``steps[column]``) of several runs on one axis, e.g. a simulated and a real
    run of the same workload; drawn solid for the engine and dashed for the simulator."""
    plt = _pyplot()
    data: dict[str, Any] = {"column": column, "series": []}
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        values = run["steps"][column]
        label = f"{run.get('source', '')}: {run.get('variant', run['config']['kv_policy'])}"
        colour, _ = _style(run.get("variant", run["config"]["kv_policy"]))
        scale = 100 if column == "utilization" else 1
        simulated = run.get("source") == "simulator"
        ax.plot(
            range(len(values)),
            [scale * v for v in values],
            color=colour,
            linestyle="--" if simulated else "-",
            linewidth=1.2 if simulated else 2.5,
            alpha=1.0 if simulated else 0.45,
            label=label,
        )
        data["series"].append({"label": label, "values": values})
    ax.set_xlabel("engine step")
    ax.set_ylabel("KV utilization (%)" if column == "utilization" else column)
    if column == "utilization":
        ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{column} per step", fontsize=10)
    return _save(fig, path, data)
