"""Markdown tables of KV memory reports (``pagedllm simulate`` and ``pagedllm generate --kv-report``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def seed_memory_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """The published comparison: utilization per batch size and policy, at full length and time-averaged."""
    sweep = [r for r in runs if r.get("study") == "utilization"]
    variants = list(dict.fromkeys(r["variant"] for r in sweep))
    by_key = {(r["params"]["batch_size"], r["variant"]): r["summary"] for r in sweep}
    header = ["batch"]
    for variant in variants:
        header += [f"{variant}: at full length", f"{variant}: time avg"]
    rows = []
    for batch in sorted({r["params"]["batch_size"] for r in sweep}):
        row: list[Any] = [batch]
        for variant in variants:
            summary = by_key.get((batch, variant), {})
            row += [
                percent(summary.get("utilization_at_full_length")),
                percent(summary.get("utilization_time_avg")),
            ]
        rows.append(row)
    return table(header, rows)


def capacity_table(capacity: Sequence[Mapping[str, Any]], model: Mapping[str, Any] | None = None) -> str:
    rows = []
    for entry in capacity:
        memory = "-"
        if model is not None:
            memory = f"{entry['num_blocks'] * model['bytes_per_block'] / 2**30:.2f} GiB"
        rows.append(
            [
                entry["variant"],
                memory,
                entry["num_blocks"],
                entry["largest_batch"],
                entry.get("peak_used_blocks", "-"),
                percent(entry.get("utilization_time_avg")),
            ]
        )
    header = ["policy", "KV memory", "blocks", "largest batch", "peak blocks used", "utilization (time avg)"]
    return table(header, rows)


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """One row per run: utilization, where the held memory goes, concurrency, preemptions, sharing."""
    header = [
        "workload",
        "policy",
        "requests",
        "rejected",
        "steps",
        "util. at full length",
        "util. (time avg)",
        "tail frag.",
        "reservation",
        "pool free",
        "peak blocks",
        "running peak / mean",
        "preempt.",
        "shared blocks (peak)",
        "saved blocks (peak)",
    ]
    rows = []
    for run in runs:
        s = run["summary"]
        rows.append(
            [
                f"{run.get('workload', run.get('source', ''))} {run.get('label', '')}".strip(),
                run.get("variant", run["config"]["kv_policy"]),
                run.get("num_requests", s["num_finished"]),
                run.get("num_rejected", 0),
                s["num_steps"],
                percent(s["utilization_at_full_length"]),
                percent(s["utilization_time_avg"]),
                percent(s["tail_fragmentation_time_avg"]),
                percent(s["reservation_time_avg"]),
                percent(s["pool_free_fraction"]),
                f"{s['peak_used_blocks']} / {s['num_blocks']}",
                f"{s['peak_running']} / {s['mean_running']:.1f}",
                s["num_preemptions"],
                s["peak_shared_blocks"],
                s["peak_blocks_saved_by_sharing"],
            ]
        )
    return table(header, rows)


def shared_prefix_table(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for run in runs:
        d = run.get("derived") or {}
        if "prefix_memory_saved" not in d:
            continue
        rows.append(
            [
                run["label"],
                run["variant"],
                d["peak_running"],
                d["prefix_slots_unshared"],
                d["prefix_slots_saved"],
                percent(d["prefix_memory_saved"]),
            ]
        )
    header = [
        "workload",
        "policy",
        "requests resident",
        "prefix slots unshared",
        "slots saved",
        "prefix memory saved",
    ]
    return table(header, rows)


def rejections(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line per workload whose requests the scheduler refused: its figures are for the rest only."""
    lines = {}
    for run in runs:
        num_rejected = run.get("num_rejected", 0)
        if num_rejected:
            name = f"{run.get('workload', '')} {run.get('label', '')}".strip()
            num_ran = run["num_requests"] - num_rejected
            # NOTE: keyed by workload: every policy refuses the same requests (the rule is max_model_len's).
            lines[name] = (
                f"{name}: {num_rejected} of {run['num_requests']} requests rejected (a prompt of "
                f"max_model_len={run['config']['max_model_len']} tokens or more leaves no room for output); "
                + (f"its figures are for the {num_ran} that ran" if num_ran else "none ran: no figures")
            )
    return list(lines.values())


def pool_size(pool: Mapping[str, Any]) -> str:
    """The pool's bytes, and the size asked for where whole blocks fell visibly short of it."""
    held = f"{pool['kv_memory_bytes'] / 2**30:.2f} GiB"
    requested = pool.get("kv_memory_bytes_requested")
    # NOTE: 16 GiB of qwen2.5-0.5b is 87,381 blocks and 188 KiB over: "16.00 GiB; 16 GiB asked for" says
    # nothing but noise, so the size asked for appears only where it rounds differently.
    if requested is None or f"{requested / 2**30:.2f} GiB" == held:
        return held
    return f"{held}; {requested / 2**30:.4g} GiB asked for"


def report_markdown(report: Mapping[str, Any]) -> str:
    """All the tables a report has, with a line on the model and pool they are for."""
    parts = []
    model = report.get("model")
    pool = report.get("pool")
    if model is not None and pool is not None:
        parts.append(
            f"Model `{model['model']}` ({model['dtype']}, "
            f"{model['bytes_per_token'] / 2**10:g} KiB per token), "
            f"KV pool {pool['num_blocks']} blocks of {pool['block_size']} tokens ({pool_size(pool)})."
        )
    runs = report.get("runs", [])
    parts += [f"**Rejected**: {line}." for line in rejections(runs)]
    if any(r.get("study") == "utilization" for r in runs):
        parts.append("KV utilization (slots holding tokens / slots allocated or reserved), seed-memory:")
        parts.append(seed_memory_table(runs))
    if report.get("capacity"):
        parts.append(
            "Largest seed-memory batch the fixed pool sustains (all admitted at once, none preempted):"
        )
        parts.append(capacity_table(report["capacity"], model))
    if any((r.get("derived") or {}).get("prefix_memory_saved") is not None for r in runs):
        parts.append("Shared system prompt, at the step with the most requests resident:")
        parts.append(shared_prefix_table(runs))
    if runs:
        parts.append(
            "Every run (time averages are over engine steps; fractions of held slots except pool free):"
        )
        parts.append(runs_table(runs))
    return "\n\n".join(parts) + "\n"
