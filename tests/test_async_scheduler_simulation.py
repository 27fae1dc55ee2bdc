"""The scheduler driven as the async engine drives it (each step scheduled ahead of the one in flight
where ``schedule_ahead`` can, admissions and prefill chunks included) gives every request the tokens an
oracle gives it, as the synchronous loop does, over randomized workloads: arrivals between steps, shared
prefixes, EOS, stop tokens and stop strings, parallel sampling (forks), chunked prefills under small
budgets, preemption by recompute and by swapping in small pools, aborts with the id reused at once, and
the contiguous KV policy. The model is a fake whose next token is a function of the sequence so far (and
of the request, so forks differ), so a step computed from wrong inputs shows in the outputs; every step
is also checked for its token budget, its seats and a slot for every token."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

import pytest

from pagedllm.core import KVCacheManager, Request, RequestStatus, Scheduler, SchedulerConfig, StopCriteria
from pagedllm.core.contiguous_kv_cache_manager import ContiguousKVCacheManager
from pagedllm.core.scheduler_output import SchedulerOutput

EOS = 2
MAX_MODEL_LEN = 48


def _next_token(tokens: list[int], request_id: str) -> int:
    salt = zlib.crc32(request_id.encode()) % 7
    h = (tokens[-1] * 31 + (tokens[-2] if len(tokens) > 1 else 5) * 7 + len(tokens) + salt) % 89
    return EOS if h == 0 else 3 + h % 40


def _stop_string(output: list[int]) -> bool:
    """The engine's stop strings, as a rule on the last two tokens: checked after the token stops."""
    return len(output) >= 2 and (output[-1] + output[-2]) % 23 == 0


def _oracle(request_id: str, prompt: list[int], stop: StopCriteria) -> list[int]:
    """The outputs a request gets run alone, one token at a time."""
    request = Request(request_id, list(prompt), stop)
    while True:
        request.append_output_token(_next_token(request.all_token_ids, request_id))
        if request.check_token_stop() is not None or len(request.all_token_ids) >= MAX_MODEL_LEN:
            return request.output_token_ids
        if _stop_string(request.output_token_ids):
            return request.output_token_ids


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
        for request_id in sched.finished_request_ids:
            self.tokens.pop(request_id, None)
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
                prefix = tokens[:end]
                for child in item.fork_request_ids:  # sampled from the parent's prefill, then its own
                    sampled[child] = _next_token(prefix, child)
                    self.tokens[child] = [*prefix, sampled[child]]
                sampled[item.request_id] = token = _next_token(prefix, item.request_id)
                del tokens[end:]
                tokens.append(token)
        return sampled


@dataclass
class _Tracked:
    request: Request
    expected: list[int]
    aborted: bool = False


@dataclass
class _Simulation:
    seed: int
    ahead: bool
    contiguous: bool = False
    tracked: list[_Tracked] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def run(self) -> None:
        rng = random.Random(self.seed)
        block_size = rng.choice([2, 4])
        prefixes = [[rng.randrange(3, 43) for _ in range(rng.randint(1, 12))] for _ in range(3)]
        arrivals = []
        for i in range(rng.randint(4, 14)):
            prompt = rng.choice(prefixes) + [rng.randrange(3, 43) for _ in range(rng.randint(0, 14))]
            stop = StopCriteria(
                max_tokens=rng.randint(1, 20),
                eos_token_id=EOS if rng.random() < 0.7 else None,
                stop_token_ids=frozenset({rng.randrange(3, 43)}) if rng.random() < 0.3 else frozenset(),
            )
            n = 1 if self.contiguous else rng.choice([1, 1, 2, 3])
            arrivals.append(
                (rng.choice([0, 0, rng.randint(0, 30)]), f"r{i}", prompt[: MAX_MODEL_LEN - 2], stop, n)
            )
        arrivals.sort(key=lambda a: a[0])
        swap = not self.contiguous and rng.random() < 0.4
        config = SchedulerConfig(
            max_num_seqs=rng.randint(3, 6),
            max_num_batched_tokens=rng.choice([8, 16, 64]),
            max_model_len=MAX_MODEL_LEN,
            preemption_mode=rng.choice(["auto", "swap"]) if swap else "recompute",
            swap_threshold_tokens=8,
        )
        num_blocks = rng.randint(MAX_MODEL_LEN // block_size + 1, 60)
        if self.contiguous:
            kv: KVCacheManager = ContiguousKVCacheManager(
                max(num_blocks, 2 * MAX_MODEL_LEN // block_size), block_size, MAX_MODEL_LEN
            )
        else:
            kv = KVCacheManager(num_blocks, block_size, True, 64 if swap else 0)
        scheduler = Scheduler(config, kv)
        worker = _FakeWorker(config, block_size)
        # Aborts come from their own generator: the same workload either way, each loop its own aborts.
        abort_rng = random.Random(self.seed * 7 + self.ahead)
        live: dict[str, _Tracked] = {}

        def add(request_id: str, prompt: list[int], stop: StopCriteria, n: int) -> None:
            parent = Request(request_id, list(prompt), stop)
            scheduler.add_request(parent)
            family = [parent]
            if n > 1:
                family += [Request(f"{request_id}.{j}", list(prompt), stop) for j in range(1, n)]
                scheduler.add_fork_children(request_id, family[1:])
            for request in family:
                tracked = _Tracked(request, _oracle(request.request_id, prompt, stop))
                self.tracked.append(tracked)
                live[request.request_id] = tracked

        def between_steps(tick: int) -> None:
            while arrivals and arrivals[0][0] <= tick:
                add(*arrivals.pop(0)[1:])
            if not live or abort_rng.random() >= 0.15:
                return
            request_id = abort_rng.choice(sorted(live))
            # A parent's abort ends its children that have not forked yet; abort them all.
            family = [r for r in live if r == request_id or r.startswith(f"{request_id}.")]
            scheduler.finish_requests(family, RequestStatus.FINISHED_ABORTED)
            for member in family:
                live.pop(member).aborted = True
            if "." not in request_id and abort_rng.random() < 0.5:  # the id reused at once
                prompt = [abort_rng.randrange(3, 43) for _ in range(abort_rng.randint(1, 20))]
                stop = StopCriteria(max_tokens=abort_rng.randint(1, 15), eos_token_id=EOS)
                add(request_id, prompt, stop, 1 if self.contiguous else abort_rng.choice([1, 2]))

        def process(sched: SchedulerOutput, sampled: dict[str, int]) -> None:
            updated = scheduler.update_from_output(sched, sampled)
            by_string = [
                r.request_id for r in updated if not r.is_finished and _stop_string(r.output_token_ids)
            ]
            scheduler.finish_requests(by_string, RequestStatus.FINISHED_STOPPED)
            for request in updated:
                if request.is_finished:
                    live.pop(request.request_id, None)
            scheduler.check_invariants()

        tick = num_ahead = 0
        in_flight: tuple[SchedulerOutput, dict[str, int]] | None = None
        while arrivals or scheduler.has_unfinished_requests() or in_flight is not None:
            between_steps(tick)
            tick += 1
            assert tick < 5_000, "no progress"
            if in_flight is not None:
                sched, sampled = in_flight
                in_flight = None
                ahead = scheduler.schedule_ahead(sched) if self.ahead else None
                if ahead is not None:
                    num_ahead += 1
                    in_flight = (ahead, worker.run(ahead))
                process(sched, sampled)
                if in_flight is not None:
                    continue
            if not scheduler.has_unfinished_requests():
                continue
            sched = scheduler.schedule()
            sampled = worker.run(sched)
            if any(item.needs_sample for item in sched.scheduled):
                in_flight = (sched, sampled)
            else:
                process(sched, sampled)
        assert kv.num_free_blocks == kv.num_blocks, "blocks leaked"
        assert kv.num_free_cpu_blocks == kv.num_cpu_blocks, "swap slots leaked"
        self.counts = {
            "ahead": num_ahead,
            "swaps": scheduler.num_swap_preemptions,
            "recomputes": scheduler.num_preemptions - scheduler.num_swap_preemptions,
            "hits": kv.num_prefix_hits,
            "forks": sum("." in t.request.request_id for t in self.tracked),
            "aborts": sum(t.aborted for t in self.tracked),
        }

    def check_outputs(self) -> None:
        for tracked in self.tracked:
            output = tracked.request.output_token_ids
            if tracked.aborted:  # whatever it got before its abort
                assert output == tracked.expected[: len(output)], tracked.request.request_id
            else:
                assert output == tracked.expected, tracked.request.request_id


SEEDS = range(80)


@pytest.mark.parametrize("contiguous", [False, True], ids=["paged", "contiguous"])
@pytest.mark.parametrize("seed", SEEDS)
def test_steps_scheduled_ahead_give_every_request_its_tokens_as_the_synchronous_loop_does(seed, contiguous):
    for ahead in (False, True):
        simulation = _Simulation(seed, ahead, contiguous)
        simulation.run()
        simulation.check_outputs()


def test_the_simulations_cover_admissions_chunks_preemption_prefix_hits_forks_and_aborts_ahead():
    """The seeds above exercise what they claim: steps scheduled ahead that admit requests and continue
    prefill chunks, preemptions of both kinds, prefix hits, forks and aborts."""
    seen = {
        "admitted ahead": 0,
        "chunk ahead": 0,
        "swaps": 0,
        "recomputes": 0,
        "hits": 0,
        "forks": 0,
        "aborts": 0,
    }
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
            simulation = _Simulation(seed, ahead=True)
            simulation.run()
            for key in ("swaps", "recomputes", "hits", "forks", "aborts"):
                seen[key] += simulation.counts[key]
    finally:
        Scheduler.schedule_ahead = original  # type: ignore[method-assign]
    assert all(count > 0 for count in seen.values()), seen
