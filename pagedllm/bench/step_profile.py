"""Where a decode step's GPU time goes: its captured graph replayed under the profiler, each kernel
charged with the time it adds to the chain.

Under programmatic dependent launch a kernel starts before the one ahead of it ends and waits, so its
own duration counts that wait too, and the durations of a step sum to more than the step. A step's
kernels form one chain (each waits for the whole of the one before), so each kernel is charged here
with ``end - previous end``: the time from the moment the kernel ahead finished until this one did.
Those charges sum to the replay's time exactly; a gap where no kernel ran (the GPU idle between two
launches) is counted inside the charge of the kernel after it and also reported on its own.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KernelSpan:
    name: str
    start_us: float
    end_us: float


@dataclass
class ChainLink:
    """One position of the replayed chain: ``charge_us`` = end minus the previous kernel's end,
    ``gap_us`` = idle time before it, ``duration_us`` = its own span (waits included); medians over
    the replays."""

    position: int
    name: str
    charge_us: float
    gap_us: float
    duration_us: float


def chain_links(spans: list[KernelSpan], replays: int) -> list[ChainLink]:
    """Split ``spans`` (every GPU kernel of ``replays`` replays of one graph) into replays and charge
    each position of the chain; raises where the replays did not run the same kernels."""
    if replays < 1 or not spans or len(spans) % replays:
        raise ValueError(f"{len(spans)} kernels do not split into {replays} equal replays")
    ordered = sorted(spans, key=lambda s: (s.start_us, s.end_us))
    per_replay = len(ordered) // replays
    runs = [ordered[i * per_replay : (i + 1) * per_replay] for i in range(replays)]
    names = [s.name for s in runs[0]]
    for run in runs[1:]:
        if [s.name for s in run] != names:
            raise ValueError("the replays ran different kernels (or overlapped one another)")
    links = []
    for pos, name in enumerate(names):
        charges, gaps, durations = [], [], []
        for run in runs:
            span = run[pos]
            before = run[pos - 1].end_us if pos else span.start_us
            charges.append(span.end_us - before)
            gaps.append(max(0.0, span.start_us - before))
            durations.append(span.end_us - span.start_us)
        links.append(
            ChainLink(
                pos, name, statistics.median(charges), statistics.median(gaps), statistics.median(durations)
            )
        )
    return links


def by_kernel(links: list[ChainLink]) -> list[dict[str, Any]]:
    """The chain's charges summed per kernel name, largest first."""
    rows: dict[str, dict[str, Any]] = {}
    for link in links:
        row = rows.setdefault(link.name, {"kernel": link.name, "count": 0, "charge_us": 0.0, "gap_us": 0.0})
        row["count"] += 1
        row["charge_us"] += link.charge_us
        row["gap_us"] += link.gap_us
    return sorted(rows.values(), key=lambda r: -r["charge_us"])


def format_table(links: list[ChainLink]) -> str:
    total = sum(link.charge_us for link in links)
    lines = [f"one replay: {total:.1f} us over {len(links)} kernels (charge = end - previous end)", ""]
    lines.append(f"{'charge us':>10}{'share':>7}{'count':>6}{'gaps us':>9}  kernel")
    for row in by_kernel(links):
        lines.append(
            f"{row['charge_us']:>10.1f}{row['charge_us'] / total:>7.1%}{row['count']:>6}{row['gap_us']:>9.1f}"
            f"  {row['kernel'][:90]}"
        )
    return "\n".join(lines)


def profile_graph_replays(graph: Any, replays: int = 5) -> list[ChainLink]:
    """Replay a captured CUDA graph ``replays`` times under the profiler and charge its kernels."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    graph.replay()  # warm: the first replay under the profiler should not pay for anything lazy
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(replays):
            graph.replay()
            torch.cuda.synchronize()  # keeps replays apart, so none overlaps the next
    spans = [
        KernelSpan(e.name, e.time_range.start, e.time_range.end)
        for e in prof.events()
        if e.device_type == DeviceType.CUDA
    ]
    return chain_links(spans, replays)
