"""The named memory studies of BENCHMARKS.md, run on the simulator, and the report (plain dicts) they make.

A report is ``{"tool", "model", "pool", "workload", "runs": [...], "capacity": [...]}``; each run is a
``SimRun.to_dict()`` with a ``study`` tag (``utilization``, ``capacity`` or ``workload``) and ``derived``
figures. The markdown tables and the pictures are drawn from this dict and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pagedllm.core.kv_cache_manager import cdiv
from pagedllm.core.kv_stats import requests_holding_blocks
from pagedllm.core.scheduler import Scheduler
from pagedllm.sim.simulator import Replay, SimConfig, SimRun, simulate
from pagedllm.sim.workloads import SEED_MEMORY_MAX_LENGTH, Workload, seed_memory


@dataclass(frozen=True, slots=True)
class Variant:
    """One KV memory policy as the study runs it."""

    name: str
    kv_policy: str
    enable_prefix_caching: bool

    def apply(self, config: SimConfig) -> SimConfig:
        return replace(config, kv_policy=self.kv_policy, enable_prefix_caching=self.enable_prefix_caching)


CONTIGUOUS = Variant("contiguous", "contiguous", False)
PAGED = Variant("paged", "paged", True)  # the engine's default: prefix caching on
PAGED_NO_PREFIX_CACHE = Variant("paged-no-prefix-cache", "paged", False)


def variants_for(policies: Sequence[str], prefix_caching: bool, workload_name: str) -> list[Variant]:
    """The variants a study compares: each policy asked for, and for ``shared-prefix`` paging without the
    prefix cache beside paging with it (the sharing is the point there) unless the cache is turned off."""
    variants: list[Variant] = []
    for policy in policies:
        if policy == "contiguous":
            variants.append(CONTIGUOUS)
        elif workload_name == "shared-prefix" and prefix_caching:
            variants += [PAGED_NO_PREFIX_CACHE, PAGED]
        else:
            variants.append(PAGED if prefix_caching else PAGED_NO_PREFIX_CACHE)
    return variants


def run_tagged(
    workload: Workload,
    config: SimConfig,
    variant: Variant,
    study: str,
    block_map_step: int | str | None = None,
) -> tuple[SimRun, dict[str, Any]]:
    run = simulate(workload, variant.apply(config), variant.name, block_map_step)
    return run, {"study": study, "derived": derived_metrics(run)}


def derived_metrics(run: SimRun) -> dict[str, Any]:
    """Figures a workload is about beyond the generic summary: the shared prompt's memory saved."""
    prefix_len = run.workload.params.get("prefix_len")
    if run.workload.name != "shared-prefix" or not prefix_len or not run.samples:
        return {}  # not shared-prefix, or every request was rejected: no step to read
    # The step with the most requests resident, each holding its own view of the shared prompt.
    peak = max(run.samples, key=lambda s: (s.num_running, -s.step))
    saved_slots = peak.num_blocks_saved_by_sharing * run.config.block_size
    return {
        "prefix_len": prefix_len,
        "peak_step": peak.step,
        "peak_running": peak.num_running,
        "prefix_slots_unshared": peak.num_running * prefix_len,
        "prefix_slots_saved": saved_slots,
        "prefix_memory_saved": saved_slots / (peak.num_running * prefix_len),
    }


# -- seed-memory ---------------------------------------------------------------------------------------


def seed_memory_sweep(
    batch_sizes: Sequence[int],
    variants: Sequence[Variant],
    base: SimConfig,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[SimRun, dict[str, Any]]]:
    """Utilization of what is allocated, per batch size: the pool is sized so that the whole batch is
    admitted together under either policy (``batch x cdiv(max_model_len, block_size)`` blocks)."""
    check_seed_memory_fits(base)
    runs = []
    for batch_size in batch_sizes:
        workload = seed_memory(batch_size, seed)
        pool = batch_size * cdiv(base.max_model_len, base.block_size)
        for variant in variants:
            if progress is not None:
                progress(f"seed-memory batch={batch_size} {variant.name}")
            runs.append(run_tagged(workload, replace(base, num_blocks=pool), variant, "utilization"))
    return runs


def sustains(run: SimRun) -> bool:
    """Every request ran from the first step to its end: all admitted at once, none preempted (and so
    none rejected)."""
    return (
        bool(run.samples)
        and run.num_rejected == 0
        and run.samples[0].num_running == len(run.workload.requests)
        and run.summary.num_preemptions == 0
    )


def is_sustained(workload: Workload, config: SimConfig) -> bool:
    """``sustains(simulate(workload, config))``, stopping as soon as the verdict is known: at the first
    step that leaves a request out or preempts one, or once the requests left, each at its longest, fit
    the pool together (then no step can preempt). No recorder: the capacity search runs this many times.
    """
    replay = Replay(workload, config)
    scheduler = replay.scheduler
    num_steps = 0
    for _ in replay.steps():
        if scheduler.num_preemptions or replay.num_rejected:
            return False
        if num_steps == 0 and len(requests_holding_blocks(scheduler)) != len(workload.requests):
            return False
        num_steps += 1
        if replay.num_arrived == len(workload.requests) and _left_fit_at_their_longest(scheduler):
            return True
    return num_steps > 0 and scheduler.num_preemptions == 0 and replay.num_rejected == 0


def _left_fit_at_their_longest(scheduler: Scheduler) -> bool:
    """Whether every unfinished request's block table at its longest fits the pool beside the others'.

    NOTE: then no step can preempt: a request is preempted only when a table cannot grow, and a table
    never outgrows both its size now (a contiguous reservation) and the blocks of its prompt plus every
    response token (the last one's K/V is never even stored). Physical blocks are at most the tables'
    sum (sharing only lowers it); blocks of finished requests are free or evictable cached ones.
    """
    if scheduler.waiting or scheduler.swapped:
        return False
    kv = scheduler.kv
    longest = 0
    for request in scheduler.running:
        num_tokens = request.num_prompt_tokens + request.stop.max_tokens
        longest += max(len(kv.block_tables.get(request.request_id, ())), cdiv(num_tokens, kv.block_size))
    return longest <= kv.num_blocks


def check_seed_memory_fits(config: SimConfig) -> None:
    """seed-memory's figures are for its lengths: refuse a max_model_len that would reject or cut some."""
    # A sequence of length L ends holding L tokens of K/V plus the last sampled token.
    needed = SEED_MEMORY_MAX_LENGTH + 1
    if config.max_model_len < needed:
        raise ValueError(
            f"seed-memory sequences reach {SEED_MEMORY_MAX_LENGTH} tokens: max_model_len must be >= "
            f"{needed}, got {config.max_model_len} (a shorter one would reject or cut some; use a trace)"
        )


def largest_batch(
    variant: Variant, base: SimConfig, seed: int = 0, block_map_step: int | str | None = None
) -> tuple[int, SimRun | None]:
    """The largest batch of seed-memory sequences that ``base``'s fixed pool sustains (see ``sustains``),
    found by doubling then bisection; with the run at that batch."""
    check_seed_memory_fits(base)
    verdicts: dict[int, bool] = {}

    def ok(batch_size: int) -> bool:
        if batch_size not in verdicts:
            verdicts[batch_size] = is_sustained(seed_memory(batch_size, seed), variant.apply(base))
        return verdicts[batch_size]

    if not ok(1):
        return 0, None
    low, high = 1, 2
    while ok(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if ok(middle) else (low, middle)
    # NOTE: run again for the record: the search runs skip block-map snapshots, which cost a pass over
    # the pool each time the peak grows.
    workload = replace(seed_memory(low, seed), label=f"batch={low}, largest in {base.num_blocks} blocks")
    return low, simulate(workload, variant.apply(base), variant.name, block_map_step)


# -- the report ----------------------------------------------------------------------------------------


def run_dict(run: SimRun, tags: dict[str, Any], include_steps: bool) -> dict[str, Any]:
    return {**run.to_dict(include_steps), **tags}


def capacity_entry(variant: Variant, base: SimConfig, batch: int, run: SimRun | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "variant": variant.name,
        "num_blocks": base.num_blocks,
        "block_size": base.block_size,
        "max_model_len": base.max_model_len,
        "largest_batch": batch,
    }
    if run is not None:
        entry["peak_used_blocks"] = run.summary.peak_used_blocks
        entry["utilization_time_avg"] = run.summary.utilization_time_avg
    return entry


# -- pagedllm simulate ----------------------------------------------------------------------------------

WORKLOAD_NAMES = ("seed-memory", "shared-prefix", "synthetic")
DEFAULT_KV_MEMORY = "16GiB"


# The largest pool simulated. Each block is a Python object here (120 bytes, 2 s per million to build),
# so 4M blocks take 0.5 GB before any request; real pools are smaller (an H200's 141 GB holds ~0.7M of
# Qwen2.5-0.5B's 16-token blocks of 196 KB). A 10^11-block pool was a MemoryError.
MAX_NUM_BLOCKS = 1 << 22


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """What ``pagedllm simulate`` was asked for."""

    workload: str = "seed-memory"  # a name of WORKLOAD_NAMES or a trace file (.json / .csv)
    model: str = "llama-2-7b"
    dtype: str = "auto"
    kv_memory_bytes: int | None = None  # None and no num_blocks: DEFAULT_KV_MEMORY
    num_blocks: int | None = None
    block_size: int = 16
    max_model_len: int = 2048
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None
    enable_chunked_prefill: bool = True
    enable_prefix_caching: bool = True
    policies: tuple[str, ...] = ("contiguous", "paged")
    batch_sizes: tuple[int, ...] = ()  # seed-memory; () = BENCHMARKS.md's
    num_requests: tuple[int, ...] = ()  # shared-prefix / synthetic; () = their defaults
    request_rate: float = 20.0  # synthetic
    seed: int = 0
    block_map_step: int | str | None = "peak"
    include_steps: bool = True
    step_seconds: float = 0.01
    token_seconds: float = 1e-4
    command: str = ""


def simulate_report(
    options: SimulateOptions, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    from pagedllm import __version__
    from pagedllm.sim.models import (
        kv_size,
        load_model_spec,
        num_blocks_for_memory,
        parse_memory_size,
    )
    from pagedllm.sim.workloads import (
        SEED_MEMORY_BATCH_SIZES,
        SHARED_PREFIX_NUM_REQUESTS,
        load_trace,
        shared_prefix,
        synthetic_trace,
    )

    spec = load_model_spec(options.model)
    size = kv_size(spec, options.dtype, options.block_size)
    requested_bytes: int | None = None  # what --kv-memory asked for; the pool is the whole blocks in it
    if options.num_blocks is not None:
        num_blocks = options.num_blocks
    else:
        requested_bytes = options.kv_memory_bytes or parse_memory_size(DEFAULT_KV_MEMORY)
        num_blocks = num_blocks_for_memory(requested_bytes, size.bytes_per_block)
    if num_blocks > MAX_NUM_BLOCKS:
        raise ValueError(
            f"a pool of {num_blocks:,} blocks is more than the simulator models ({MAX_NUM_BLOCKS:,}: it "
            "keeps an object per block): use a smaller --kv-memory / --num-blocks or a larger --block-size"
        )
    base = SimConfig(
        num_blocks=num_blocks,
        block_size=options.block_size,
        max_model_len=options.max_model_len,
        max_num_seqs=options.max_num_seqs,
        max_num_batched_tokens=options.max_num_batched_tokens,
        enable_chunked_prefill=options.enable_chunked_prefill,
        step_seconds=options.step_seconds,
        token_seconds=options.token_seconds,
    )
    name = options.workload if options.workload in WORKLOAD_NAMES else "trace"
    variants = variants_for(options.policies, options.enable_prefix_caching, name)
    runs: list[dict[str, Any]] = []
    capacity: list[dict[str, Any]] = []

    def add(pair: tuple[SimRun, dict[str, Any]]) -> None:
        runs.append(run_dict(pair[0], pair[1], options.include_steps))

    if name == "seed-memory":
        batch_sizes = options.batch_sizes or SEED_MEMORY_BATCH_SIZES
        for pair in seed_memory_sweep(batch_sizes, variants, base, options.seed, progress):
            add(pair)
        for variant in variants:
            if progress is not None:
                progress(f"seed-memory capacity of {num_blocks} blocks: {variant.name}")
            batch, run = largest_batch(variant, base, options.seed, options.block_map_step)
            capacity.append(capacity_entry(variant, base, batch, run))
            if run is not None:
                add((run, {"study": "capacity", "derived": derived_metrics(run)}))
    else:
        if name == "shared-prefix":
            workloads = [
                shared_prefix(n, seed=options.seed)
                for n in options.num_requests or SHARED_PREFIX_NUM_REQUESTS
            ]
        elif name == "synthetic":
            workloads = [
                synthetic_trace(n, options.request_rate, options.seed)
                for n in options.num_requests or (1000,)
            ]
        else:
            workloads = [load_trace(options.workload)]
        for workload in workloads:
            for variant in variants:
                if progress is not None:
                    progress(f"{workload.name} {workload.label} {variant.name}")
                add(run_tagged(workload, base, variant, "workload", options.block_map_step))
    return {
        "tool": "pagedllm simulate",
        "version": __version__,
        "command": options.command,
        "model": {**size.as_dict(), "source": spec.source},
        "pool": {
            "num_blocks": num_blocks,
            "block_size": options.block_size,
            "kv_memory_bytes": num_blocks * size.bytes_per_block,
            "kv_memory_bytes_requested": requested_bytes,
        },
        "workload": {"name": name, "spec": options.workload, "seed": options.seed},
        "runs": runs,
        "capacity": capacity,
    }
