"""Replays a workload through the real ``Scheduler`` and KV cache manager with a model that only counts.

The executor is one line: every sequence that needs a sample gets a dummy token, and requests finish by
``max_tokens`` (the response length the workload gives). Everything else, admission, chunked prefill,
block allocation, prefix caching, preemption, is the engine's own code from ``pagedllm.core``, so
the memory figures are the engine's, step for step, without a model or torch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from pagedllm.core.kv_policy import KV_POLICIES, kv_policy_name, make_kv_cache_manager
from pagedllm.core.kv_stats import KVMemorySample, KVStatsRecorder, KVStatsSummary
from pagedllm.core.request import Request, StopCriteria
from pagedllm.core.scheduler import RequestRejectedError, Scheduler, SchedulerConfig
from pagedllm.core.scheduler_output import SchedulerOutput
from pagedllm.sim.block_map import BlockMap, snapshot_block_map
from pagedllm.sim.workloads import SimRequest, Workload

DUMMY_TOKEN_ID = 0
_SHARED_PREFIX_BASE = 1  # shared prefix tokens are 1, 2, ...; each request's own tokens start far above
_OWN_TOKENS_STRIDE = 1 << 24


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The engine settings that shape memory use (the engine's defaults), plus the simulated clock."""

    num_blocks: int
    block_size: int = 16
    kv_policy: str = "paged"
    max_model_len: int = 2048
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None  # None: max(8192, max_model_len), the engine server's
    enable_chunked_prefill: bool = True
    enable_prefix_caching: bool = False
    # A step lasts step_seconds + token_seconds * scheduled tokens. The clock only orders arrivals
    # against steps; every time average in the report is over steps.
    step_seconds: float = 0.01
    token_seconds: float = 1e-4

    def __post_init__(self) -> None:
        if self.kv_policy not in KV_POLICIES:
            raise ValueError(f"kv_policy={self.kv_policy!r}; choose one of {KV_POLICIES}")
        for name in ("num_blocks", "block_size", "max_model_len", "max_num_seqs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.num_blocks * self.block_size < self.max_model_len:
            raise ValueError(
                f"max_model_len={self.max_model_len} does not fit in {self.num_blocks} blocks of "
                f"{self.block_size} tokens; raise the KV memory or lower max_model_len"
            )
        if self.step_seconds < 0 or self.token_seconds < 0:
            raise ValueError(f"step_seconds and token_seconds must be >= 0, got {self}")

    @classmethod
    def like(cls, scheduler: Scheduler, **overrides: Any) -> SimConfig:
        """The settings of a live scheduler (``LLM(...).engine.scheduler``): to replay its workload here."""
        kv, config = scheduler.kv, scheduler.config
        settings: dict[str, Any] = {
            "num_blocks": kv.num_blocks,
            "block_size": kv.block_size,
            "kv_policy": kv_policy_name(kv),
            "max_model_len": config.max_model_len,
            "max_num_seqs": config.max_num_seqs,
            "max_num_batched_tokens": config.max_num_batched_tokens,
            "enable_chunked_prefill": config.enable_chunked_prefill,
            "enable_prefix_caching": kv.enable_prefix_caching,
        }
        return cls(**{**settings, **overrides})

    @property
    def scheduler_config(self) -> SchedulerConfig:
        return SchedulerConfig(
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens or max(8192, self.max_model_len),
            max_model_len=self.max_model_len,
            enable_chunked_prefill=self.enable_chunked_prefill,
        )

    def admitting_together(self, workload: Workload) -> SimConfig:
        """This config with room for every request of ``workload`` to start in one step."""
        budget = max(
            self.scheduler_config.max_num_batched_tokens, sum(r.prompt_len for r in workload.requests)
        )
        return replace(
            self, max_num_seqs=max(self.max_num_seqs, len(workload.requests)), max_num_batched_tokens=budget
        )


@dataclass(slots=True)
class SimRun:
    workload: Workload
    variant: str  # "paged", "contiguous", "paged+prefix-caching", ...
    config: SimConfig
    recorder: KVStatsRecorder
    num_rejected: int
    block_map: BlockMap | None
    wall_seconds: float

    @property
    def summary(self) -> KVStatsSummary:
        return self.recorder.summary()

    @property
    def samples(self) -> list[KVMemorySample]:
        return self.recorder.samples

    def to_dict(self, include_steps: bool = True) -> dict[str, Any]:
        run: dict[str, Any] = {
            "source": "simulator",
            "workload": self.workload.name,
            "label": self.workload.label,
            "variant": self.variant,
            "params": self.workload.params,
            "num_requests": len(self.workload.requests),
            "num_rejected": self.num_rejected,
            "wall_seconds": self.wall_seconds,
        }
        run.update(self.recorder.to_dict(include_steps))
        if self.block_map is not None:
            run["block_map"] = self.block_map.to_dict()
        return run


def make_request(index: int, spec: SimRequest, max_model_len: int) -> Request:
    """A core ``Request`` with made-up token ids: the shared prefix is the same for every request that has
    one, everything else is unique to the request (so prefix caching finds exactly what is shared)."""
    own_start = (index + 1) * _OWN_TOKENS_STRIDE
    prompt = [
        *range(_SHARED_PREFIX_BASE, _SHARED_PREFIX_BASE + spec.shared_prefix_len),
        *range(own_start, own_start + spec.prompt_len - spec.shared_prefix_len),
    ]
    # Like the engine: the response is capped so that prompt + response fit max_model_len.
    max_tokens = max(1, min(spec.output_len, max_model_len - spec.prompt_len))
    return Request(
        request_id=str(index),
        prompt_token_ids=prompt,
        stop=StopCriteria(max_tokens=max_tokens),
        arrival_time=spec.arrival_time,
    )


class Replay:
    """A workload fed to a fresh scheduler and KV cache manager by arrival time, one step at a time.

    ``steps()`` yields each step once scheduled, before its tokens are sampled (when the pool holds what
    the step needs); ``clock`` is then the step's start on the simulated clock.
    """

    def __init__(self, workload: Workload, config: SimConfig) -> None:
        if workload.admit_together:
            config = config.admitting_together(workload)
        self.workload = workload
        self.config = config
        self.kv = make_kv_cache_manager(
            config.kv_policy,
            config.num_blocks,
            config.block_size,
            config.max_model_len,
            config.enable_prefix_caching,
        )
        self.scheduler = Scheduler(config.scheduler_config, self.kv)
        self.request_index: dict[str, int] = {}  # request id -> index in the workload
        self.num_arrived = 0
        self.num_rejected = 0
        self.clock = 0.0
        self._order = sorted(range(len(workload.requests)), key=lambda i: workload.requests[i].arrival_time)

    def steps(self) -> Iterator[SchedulerOutput]:
        scheduler, config = self.scheduler, self.config
        while self.num_arrived < len(self._order) or scheduler.has_unfinished_requests():
            self._add_arrivals()
            if not scheduler.has_unfinished_requests():
                if self.num_arrived < len(self._order):
                    next_arrival = self.workload.requests[self._order[self.num_arrived]].arrival_time
                    self.clock = max(self.clock, next_arrival)
                continue
            out = scheduler.schedule()
            if out.is_empty:
                raise RuntimeError(
                    f"the scheduler scheduled nothing with {scheduler.num_unfinished_requests} requests "
                    f"pending ({len(scheduler.running)} running, {self.kv.num_free_blocks}/"
                    f"{self.kv.num_blocks} blocks free)"
                )
            yield out
            sampled = {
                request_id: DUMMY_TOKEN_ID
                for item in out.scheduled
                if item.needs_sample
                for request_id in (item.request_id, *item.fork_request_ids)
            }
            scheduler.update_from_output(out, sampled)
            self.clock += config.step_seconds + config.token_seconds * out.num_batched_tokens

    def _add_arrivals(self) -> None:
        requests, max_model_len = self.workload.requests, self.config.max_model_len
        while (
            self.num_arrived < len(self._order)
            and requests[self._order[self.num_arrived]].arrival_time <= self.clock
        ):
            index = self._order[self.num_arrived]
            self.num_arrived += 1
            # NOTE: Scheduler.add_request's rule, checked before the prompt's token list is built: a trace
            # may give a prompt of 10^9 tokens. (SimConfig makes max_model_len fit the pool, so a prompt
            # below it is never refused for the pool's size.)
            if requests[index].prompt_len >= max_model_len:
                self.num_rejected += 1
                continue
            request = make_request(index, requests[index], max_model_len)
            try:
                self.scheduler.add_request(request)
            except RequestRejectedError:
                self.num_rejected += 1
                continue
            self.request_index[request.request_id] = index


def simulate(
    workload: Workload,
    config: SimConfig,
    variant: str | None = None,
    block_map_step: int | str | None = None,
) -> SimRun:
    """Run ``workload`` to completion. ``block_map_step``: a recorded step's index, ``"peak"`` (the first
    step holding the most blocks), or None for no block map."""
    started = time.perf_counter()
    replay = Replay(workload, config)
    config = replay.config
    recorder = KVStatsRecorder(replay.scheduler)
    block_map: BlockMap | None = None
    peak_used = -1
    for out in replay.steps():
        sample = recorder.record(out, replay.clock)
        assert sample is not None
        if block_map_step is not None and (
            sample.step == block_map_step or (block_map_step == "peak" and sample.num_used_blocks > peak_used)
        ):
            block_map = snapshot_block_map(replay.scheduler, out, replay.request_index, sample.step)
            peak_used = sample.num_used_blocks
    if variant is None:
        # The study's names: "paged" is the engine's default, prefix caching on.
        no_cache = config.kv_policy == "paged" and not config.enable_prefix_caching
        variant = "paged-no-prefix-cache" if no_cache else config.kv_policy
    return SimRun(
        workload=workload,
        variant=variant,
        config=config,
        recorder=recorder,
        num_rejected=replay.num_rejected,
        block_map=block_map,
        wall_seconds=time.perf_counter() - started,
    )
