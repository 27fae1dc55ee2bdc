"""The scheduler driven as the async engine drives it (each step scheduled ahead of the one in flight
where ``schedule_ahead`` can, admissions and prefill chunks included) gives every request the tokens
and finish the synchronous loop gives it, over randomized workloads: arrivals between steps, shared
prefixes, EOS and stop tokens, chunked prefills under small budgets, preemption by recompute and by
swapping in small pools. The model is a fake whose next token is a function of the sequence so far,
so any token a step computes from wrong inputs shows in the outputs."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from pagedllm.core import KVCacheManager, Request, Scheduler, SchedulerConfig, StopCriteria
from pagedllm.core.scheduler_output import SchedulerOutput

EOS = 2


def _next_token(tokens: list[int]) -> int:
    h = (tokens[-1] * 31 + (tokens[-2] if len(tokens) > 1 else 5) * 7 + len(tokens)) % 89
    return EOS if h == 0 else 3 + h % 40


@dataclass
class _Workload:
    arrivals: list[tuple[int, Request]]  # (the step before which it arrives, request)
    config: SchedulerConfig
    num_blocks: int
    num_cpu_blocks: int
    block_size: int


def _workload(seed: int) -> _Workload:
    rng = random.Random(seed)
    block_size = rng.choice([2, 4])
    max_model_len = 48
    prefixes = [[rng.randrange(3, 43) for _ in range(rng.randint(1, 12))] for _ in range(3)]
    arrivals = []
    for i in range(rng.randint(4, 14)):
        prompt = rng.choice(prefixes) + [rng.randrange(3, 43) for _ in range(rng.randint(0, 14))]
        prompt = prompt[: max_model_len - 2] or [7]
        stop = StopCriteria(
            max_tokens=rng.randint(1, 20),
            eos_token_id=EOS if rng.random() < 0.7 else None,
            stop_token_ids=frozenset({rng.randrange(3, 43)}) if rng.random() < 0.3 else frozenset(),
        )
        arrivals.append((rng.choice([0, 0, rng.randint(0, 30)]), Request(f"r{i}", prompt, stop)))
    num_blocks = rng.randint(max_model_len // block_size + 1, 60)
    swap = rng.random() < 0.4
    config = SchedulerConfig(
        max_num_seqs=rng.randint(1, 6),
        max_num_batched_tokens=rng.choice([8, 16, 64]),
        max_model_len=max_model_len,
        preemption_mode=rng.choice(["auto", "swap"]) if swap else "recompute",
        swap_threshold_tokens=8,
    )
    return _Workload(arrivals, config, num_blocks, 64 if swap else 0, block_size)


class _FakeWorker:
    """Computes a step's tokens as a model would: from each sequence's tokens, its own copy of them
    (prompts, then every token it sampled), so a row scheduled ahead takes the token the step before
    sampled for it, which the scheduler has not seen yet."""

    def __init__(self, config: SchedulerConfig, block_size: int) -> None:
        self.config = config
        self.block_size = block_size
        self.tokens: dict[str, list[int]] = {}

    def run(self, sched: SchedulerOutput) -> dict[str, int]:
        assert sched.num_batched_tokens <= self.config.max_num_batched_tokens, "over the token budget"
        assert len(sched.scheduled) <= self.config.max_num_seqs, "more sequences than seats"
        for new in sched.new_requests:
            self.tokens[new.request_id] = list(new.prompt_token_ids)
        sampled = {}
        for item in sched.scheduled:
            tokens = self.tokens[item.request_id]
            end = item.start_position + len(item.token_ids)
            assert len(item.block_ids) * self.block_size >= end, f"{item.request_id}: tokens without slots"
            if item.token_from_previous_step:
                assert len(tokens) == end, f"{item.request_id}: the in-flight token is not the input"
            else:
                assert list(item.token_ids) == tokens[item.start_position : end]
            if item.needs_sample:
                token = _next_token(tokens[:end])
                sampled[item.request_id] = token
                del tokens[end:]
                tokens.append(token)
        return sampled


def _run(workload: _Workload, ahead: bool) -> tuple[dict[str, tuple], dict[str, int]]:
    kv = KVCacheManager(
        workload.num_blocks,
        workload.block_size,
        enable_prefix_caching=True,
        num_cpu_blocks=workload.num_cpu_blocks,
    )
    scheduler = Scheduler(workload.config, kv)
    worker = _FakeWorker(workload.config, workload.block_size)
    requests: dict[str, Request] = {}
    pending = sorted(workload.arrivals, key=lambda a: a[0])
    tick = 0
    num_ahead = 0
    in_flight: tuple[SchedulerOutput, dict[str, int]] | None = None

    def arrive() -> None:
        while pending and pending[0][0] <= tick:
            request = pending.pop(0)[1]
            fresh = Request(request.request_id, list(request.prompt_token_ids), request.stop)
            requests[fresh.request_id] = fresh
            scheduler.add_request(fresh)

    while pending or scheduler.has_unfinished_requests() or in_flight is not None:
        arrive()
        tick += 1
        if in_flight is not None:
            sched, sampled = in_flight
            in_flight = None
            next_sched = scheduler.schedule_ahead(sched) if ahead else None
            if next_sched is not None:
                num_ahead += 1
                in_flight = (next_sched, worker.run(next_sched))
            scheduler.update_from_output(sched, sampled)
            scheduler.check_invariants()
            if in_flight is not None or not scheduler.has_unfinished_requests():
                continue
        if not scheduler.has_unfinished_requests():
            continue
        sched = scheduler.schedule()
        sampled = worker.run(sched)
        if any(item.needs_sample for item in sched.scheduled):
            in_flight = (sched, sampled)
        else:
            scheduler.update_from_output(sched, sampled)
            scheduler.check_invariants()
        assert tick < 10_000, "no progress"
    assert kv.num_free_blocks == kv.num_blocks, "blocks leaked"
    results = {rid: (r.output_token_ids, r.status, r.stop_reason) for rid, r in requests.items()}
    counts = {
        "ahead": num_ahead,
        "swaps": scheduler.num_swap_preemptions,
        "recomputes": scheduler.num_preemptions - scheduler.num_swap_preemptions,
        "hits": kv.num_prefix_hits,
    }
    return results, counts


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_steps_scheduled_ahead_give_every_request_the_synchronous_tokens(seed):
    workload = _workload(seed)
    sync, _ = _run(workload, ahead=False)
    overlapped, counts = _run(workload, ahead=True)
    assert overlapped == sync
    assert counts["ahead"] > 0


def test_the_simulations_cover_admissions_chunks_preemption_and_prefix_hits_ahead():
    """The seeds above exercise what they claim: steps scheduled ahead that admit requests and continue
    prefill chunks, preemptions of both kinds, prefix hits."""
    seen = {"admitted ahead": 0, "chunk ahead": 0, "swaps": 0, "recomputes": 0, "hits": 0}
    original = Scheduler.schedule_ahead

    def spying(self: Scheduler, in_flight: SchedulerOutput) -> SchedulerOutput | None:
        out = original(self, in_flight)
        if out is not None:
            seen["admitted ahead"] += len(out.new_requests)
            seen["chunk ahead"] += sum(
                not s.token_from_previous_step and s.start_position > 0 for s in out.scheduled
            )
        return out

    Scheduler.schedule_ahead = spying  # type: ignore[method-assign]
    try:
        for seed in SEEDS:
            _, counts = _run(_workload(seed), ahead=True)
            for key in ("swaps", "recomputes", "hits"):
                seen[key] += counts[key]
    finally:
        Scheduler.schedule_ahead = original  # type: ignore[method-assign]
    assert all(count > 0 for count in seen.values()), seen
