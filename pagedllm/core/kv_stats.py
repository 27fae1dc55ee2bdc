"""Where the KV pool's slots go, step by step: tokens, unfilled block tails, reservation, free.

The engine (``LLM(record_kv_stats=True)``) and the simulator call one recorder at the same point of a
step, after the schedule (so this step's tokens count as stored and requests finishing this step still
hold their blocks), which is what lets simulated and real runs be compared number for number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from pagedllm.core.block_pool import KVCacheBlock
from pagedllm.core.kv_cache_manager import cdiv
from pagedllm.core.kv_policy import kv_policy_name
from pagedllm.core.request import Request, RequestStatus
from pagedllm.core.scheduler import Scheduler
from pagedllm.core.scheduler_output import SchedulerOutput


@dataclass(slots=True, frozen=True)
class KVMemorySample:
    """The pool as one step's attention sees it.

    The slot counts are physical (a block several requests share counts once) and disjoint: tokens, the
    unfilled tails of blocks tokens have reached, and reserved blocks no token has reached yet make up
    the blocks that running requests hold. The rest of the pool is free, or held outside every running
    request's table (``num_used_blocks`` counts those too).
    """

    step: int
    time: float  # seconds since the first recorded step (simulated clock or wall clock)
    num_running: int
    num_waiting: int
    num_scheduled_tokens: int
    num_preemptions: int  # since the recorder started
    num_used_blocks: int  # the pool's count: every block with a reference
    num_token_slots: int
    num_tail_slots: int
    num_reserved_slots: int
    num_shared_blocks: int  # blocks held by more than one running request
    num_blocks_saved_by_sharing: int  # table entries minus distinct blocks

    @property
    def num_allocated_slots(self) -> int:
        return self.num_token_slots + self.num_tail_slots + self.num_reserved_slots

    @property
    def utilization(self) -> float:
        """Slots holding tokens / slots held (1.0 when nothing is held: nothing is wasted)."""
        allocated = self.num_allocated_slots
        return self.num_token_slots / allocated if allocated else 1.0


@dataclass(slots=True, frozen=True)
class KVStatsSummary:
    """A run's figures. Time averages are over recorded steps (engine steps are the unit of time)."""

    num_blocks: int
    block_size: int
    num_steps: int
    duration: float
    # Each finished request as it was at its last step, when it held the most tokens.
    num_finished: int
    utilization_at_full_length: float | None
    tail_fragmentation_at_full_length: float | None  # unfilled tails / slots held
    reservation_at_full_length: float | None  # reserved blocks no token reached / slots held
    # Fractions of the slots held, averaged over steps that hold any; the three add up to 1.
    utilization_time_avg: float | None
    tail_fragmentation_time_avg: float | None
    reservation_time_avg: float | None
    # Fractions of the whole pool, averaged over all recorded steps; the five add up to 1 (a run without
    # a step held nothing: all free).
    pool_token_fraction: float
    pool_tail_fraction: float
    pool_reserved_fraction: float
    pool_other_fraction: float  # used blocks outside every running request's table
    pool_free_fraction: float
    peak_used_blocks: int
    mean_used_blocks: float
    peak_running: int
    mean_running: float
    num_preemptions: int
    peak_shared_blocks: int
    peak_blocks_saved_by_sharing: int
    mean_blocks_saved_by_sharing: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


class KVStatsRecorder:
    """Samples a scheduler's pool once per step; summarizes the run.

    Call ``record`` when a step has been scheduled (``Scheduler.schedule`` or ``schedule_ahead``: the pool
    then holds what the step needs), before the next one is. It costs one pass over the running requests,
    and one over their block tables only when blocks are shared.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.num_blocks = scheduler.kv.num_blocks
        self.block_size = scheduler.kv.block_size
        self.samples: list[KVMemorySample] = []
        self._num_preemptions_at_start = scheduler.num_preemptions
        self._start_time: float | None = None
        # request id -> (request, tokens, slots held) at its latest recorded step.
        self._last_seen: dict[str, tuple[Request, int, int]] = {}
        self._num_finished = 0
        self._num_full_length_tokens = 0
        self._num_full_length_slots = 0
        self._num_full_length_tail_slots = 0

    def record(
        self, scheduler_output: SchedulerOutput, now: float, in_flight: SchedulerOutput | None = None
    ) -> KVMemorySample | None:
        """Sample the pool after ``scheduler_output`` was scheduled; an empty step is not recorded. A step
        scheduled ahead (async scheduling) passes the step still in flight: its tokens are computed
        before this one's, though the requests do not count them yet (``update_from_output``)."""
        if scheduler_output.is_empty:
            return None
        if self._start_time is None:
            self._start_time = now
        self._harvest_finished()
        kv = self.scheduler.kv
        block_size = self.block_size
        tables = kv.block_tables
        # Tokens whose K/V each sequence has once the steps scheduled so far have run.
        ends: dict[str, int] = {}
        for step in (in_flight, scheduler_output):
            for item in step.scheduled if step is not None else ():
                ends[item.request_id] = item.start_position + item.num_tokens
        running = requests_holding_blocks(self.scheduler)
        num_tokens = [ends.get(r.request_id, r.num_computed_tokens) for r in running]

        token = tail = reserved = num_table_blocks = 0
        for request, n in zip(running, num_tokens, strict=True):
            num_held = len(tables[request.request_id])
            num_reached = min(cdiv(n, block_size), num_held)
            token += n
            tail += num_reached * block_size - n
            reserved += (num_held - num_reached) * block_size
            num_table_blocks += num_held
            self._last_seen[request.request_id] = (request, n, num_held * block_size)
        num_used_blocks = kv.num_blocks - kv.num_free_blocks
        num_shared = num_saved = 0
        # NOTE: a used block is in at least one table, so more table entries than used blocks means some
        # block is in two tables: count the distinct blocks exactly. Otherwise the sums are physical.
        if num_table_blocks > num_used_blocks:
            token, tail, reserved, num_shared, num_saved = _count_shared(
                [tables[r.request_id] for r in running], num_tokens, block_size
            )
        sample = KVMemorySample(
            step=len(self.samples),
            time=now - self._start_time,
            num_running=len(running),
            num_waiting=len(self.scheduler.waiting),
            num_scheduled_tokens=scheduler_output.num_batched_tokens,
            num_preemptions=self.scheduler.num_preemptions - self._num_preemptions_at_start,
            num_used_blocks=num_used_blocks,
            num_token_slots=token,
            num_tail_slots=tail,
            num_reserved_slots=reserved,
            num_shared_blocks=num_shared,
            num_blocks_saved_by_sharing=num_saved,
        )
        self.samples.append(sample)
        return sample

    def _harvest_finished(self) -> None:
        """Move requests that finished (not aborted) since their last sample into the full-length sums."""
        done = [
            rid for rid, (request, _, _) in self._last_seen.items() if request.status != RequestStatus.RUNNING
        ]
        for request_id in done:
            request, num_tokens, num_slots = self._last_seen.pop(request_id)
            # A preempted request is seen again when it runs again; an aborted one never reached its end.
            if request.is_finished and request.status != RequestStatus.FINISHED_ABORTED:
                self._num_finished += 1
                self._num_full_length_tokens += num_tokens
                self._num_full_length_slots += num_slots
                self._num_full_length_tail_slots += (
                    cdiv(num_tokens, self.block_size) * self.block_size - num_tokens
                )

    @property
    def num_finished(self) -> int:
        """Requests that reached their end (aborted ones do not count)."""
        self._harvest_finished()
        return self._num_finished

    @property
    def num_full_length_tokens(self) -> int:
        """Tokens the finished requests held at their last step, summed."""
        self._harvest_finished()
        return self._num_full_length_tokens

    @property
    def num_full_length_slots(self) -> int:
        """Slots the finished requests held at their last step, summed (their own view: shared count)."""
        self._harvest_finished()
        return self._num_full_length_slots

    def summary(self) -> KVStatsSummary:
        self._harvest_finished()
        samples = self.samples
        held = [s for s in samples if s.num_allocated_slots]
        pool_slots = self.num_blocks * self.block_size
        full_slots = self._num_full_length_slots

        def held_avg(part: str) -> float | None:
            if not held:
                return None
            return sum(float(getattr(s, part)) / s.num_allocated_slots for s in held) / len(held)

        def pool_avg(values: Iterable[int], no_steps: float = 0.0) -> float:
            return sum(values) / (pool_slots * len(samples)) if samples else no_steps

        def mean(values: Iterable[int]) -> float:
            return sum(values) / len(samples) if samples else 0.0

        full_tail = self._num_full_length_tail_slots
        full_tokens = self._num_full_length_tokens
        return KVStatsSummary(
            num_blocks=self.num_blocks,
            block_size=self.block_size,
            num_steps=len(samples),
            duration=samples[-1].time if samples else 0.0,
            num_finished=self._num_finished,
            utilization_at_full_length=full_tokens / full_slots if full_slots else None,
            tail_fragmentation_at_full_length=full_tail / full_slots if full_slots else None,
            reservation_at_full_length=(
                (full_slots - full_tokens - full_tail) / full_slots if full_slots else None
            ),
            utilization_time_avg=held_avg("num_token_slots"),
            tail_fragmentation_time_avg=held_avg("num_tail_slots"),
            reservation_time_avg=held_avg("num_reserved_slots"),
            pool_token_fraction=pool_avg(s.num_token_slots for s in samples),
            pool_tail_fraction=pool_avg(s.num_tail_slots for s in samples),
            pool_reserved_fraction=pool_avg(s.num_reserved_slots for s in samples),
            pool_other_fraction=pool_avg(
                s.num_used_blocks * self.block_size - s.num_allocated_slots for s in samples
            ),
            pool_free_fraction=pool_avg(
                ((self.num_blocks - s.num_used_blocks) * self.block_size for s in samples), no_steps=1.0
            ),
            peak_used_blocks=max((s.num_used_blocks for s in samples), default=0),
            mean_used_blocks=mean(s.num_used_blocks for s in samples),
            peak_running=max((s.num_running for s in samples), default=0),
            mean_running=mean(s.num_running for s in samples),
            num_preemptions=self.scheduler.num_preemptions - self._num_preemptions_at_start,
            peak_shared_blocks=max((s.num_shared_blocks for s in samples), default=0),
            peak_blocks_saved_by_sharing=max((s.num_blocks_saved_by_sharing for s in samples), default=0),
            mean_blocks_saved_by_sharing=mean(s.num_blocks_saved_by_sharing for s in samples),
        )

    def steps_as_columns(self) -> dict[str, list[float | int]]:
        """The per-step samples as one list per field (compact in JSON), plus ``utilization``."""
        names = [f.name for f in fields(KVMemorySample)]
        columns: dict[str, list[float | int]] = {name: [] for name in [*names, "utilization"]}
        for sample in self.samples:
            for name in names:
                columns[name].append(getattr(sample, name))
            columns["utilization"].append(sample.utilization)
        return columns

    def describe(self) -> dict[str, object]:
        """The settings that decide the figures: policy, pool and scheduler limits."""
        config = self.scheduler.config
        return {
            "kv_policy": kv_policy_name(self.scheduler.kv),
            "num_blocks": self.num_blocks,
            "block_size": self.block_size,
            "max_model_len": config.max_model_len,
            "max_num_seqs": config.max_num_seqs,
            "max_num_batched_tokens": config.max_num_batched_tokens,
            "enable_chunked_prefill": config.enable_chunked_prefill,
            "enable_prefix_caching": bool(getattr(self.scheduler.kv, "enable_prefix_caching", False)),
        }

    def to_dict(self, include_steps: bool = True) -> dict[str, object]:
        """``{"config", "summary", "steps"}``: one run of a KV report, from the engine or the simulator."""
        report: dict[str, object] = {"config": self.describe(), "summary": self.summary().as_dict()}
        if include_steps:
            report["steps"] = self.steps_as_columns()
        return report


def requests_holding_blocks(scheduler: Scheduler) -> list[Request]:
    """The running requests with a block table: what a sample counts as running (``num_running``)."""
    tables = scheduler.kv.block_tables
    return [r for r in scheduler.running if r.request_id in tables]


def _count_shared(
    tables: list[list[KVCacheBlock]], num_tokens: list[int], block_size: int
) -> tuple[int, int, int, int, int]:
    """(token, tail, reserved slots, shared blocks, blocks saved) over the distinct blocks of ``tables``.

    A block's fill is the most tokens any holder has in it: holders of a shared block agree on its
    contents, and the one that has written furthest into it fixes how much of it holds tokens.
    """
    filled: dict[int, int] = {}
    holders: dict[int, int] = {}
    for table, n in zip(tables, num_tokens, strict=True):
        for index, block in enumerate(table):
            fill = max(0, min(block_size, n - index * block_size))
            block_id = block.block_id
            if block_id in holders:
                holders[block_id] += 1
                filled[block_id] = max(filled[block_id], fill)
            else:
                holders[block_id] = 1
                filled[block_id] = fill
    token = sum(filled.values())
    num_reached = sum(1 for fill in filled.values() if fill)
    num_shared = sum(1 for count in holders.values() if count > 1)
    num_saved = sum(holders.values()) - len(holders)
    return (
        token,
        num_reached * block_size - token,
        (len(filled) - num_reached) * block_size,
        num_shared,
        num_saved,
    )
