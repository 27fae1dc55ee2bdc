"""Scheduler + KV manager under random arrivals, aborts, forks (n > 1 and beams), prefix hits and
preemptions by recompute and by swapping: a simulated worker moves token ids where the K/V would go,
and after every step every invariant of DESIGN.md holds and every sequence reads back its own tokens."""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pagedllm.core import KVCacheManager, Request, RequestStatus, Scheduler, SchedulerConfig, StopCriteria
from pagedllm.core.scheduler import RequestRejectedError

BLOCK_SIZE = 4
NUM_BLOCKS = 16
NUM_CPU_BLOCKS = 8
MAX_MODEL_LEN = 40
EOS = 99
_ids = itertools.count()

Slots = list[list[int | None]]


class PreemptionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.scheduler: Scheduler
        self.submitted: list[str] = []
        self.beam_ids: set[str] = set()
        # What each physical block holds: one token id per slot (None: never written).
        self.gpu: Slots = [[None] * BLOCK_SIZE for _ in range(NUM_BLOCKS)]
        self.cpu: Slots = [[None] * BLOCK_SIZE for _ in range(NUM_CPU_BLOCKS)]
        self.num_steps = 0

    @initialize(
        mode=st.sampled_from(["auto", "recompute", "swap"]),
        threshold=st.sampled_from([0, 6, 16]),
        chunked=st.booleans(),
    )
    def setup(self, mode: str, threshold: int, chunked: bool) -> None:
        config = SchedulerConfig(
            max_num_seqs=6,
            max_num_batched_tokens=16 if chunked else MAX_MODEL_LEN,
            max_model_len=MAX_MODEL_LEN,
            enable_chunked_prefill=chunked,
            preemption_mode=mode,
            swap_threshold_tokens=threshold,
        )
        kv = KVCacheManager(NUM_BLOCKS, BLOCK_SIZE, enable_prefix_caching=True, num_cpu_blocks=NUM_CPU_BLOCKS)
        self.scheduler = Scheduler(config, kv)

    # -- simulated worker ------------------------------------------------------------------------

    def _apply_block_moves(self, out) -> None:  # type: ignore[no-untyped-def]
        for gpu, cpu in out.blocks_to_swap_out:
            self.cpu[cpu] = list(self.gpu[gpu])
        for cpu, gpu in out.blocks_to_swap_in:
            self.gpu[gpu] = list(self.cpu[cpu])
        sources = {src: list(self.gpu[src]) for src, _ in out.block_copies}  # all read before any write
        for src, dst in out.block_copies:
            self.gpu[dst] = list(sources[src])

    def _execute(self, out) -> dict[str, int]:  # type: ignore[no-untyped-def]
        """Check what each sequence reads, write its new tokens, and sample a token for it."""
        self._apply_block_moves(out)
        pool = self.scheduler.kv.pool
        sampled: dict[str, int] = {}
        for item in out.scheduled:
            request = self.scheduler.requests[item.request_id]
            start, end = item.start_position, item.start_position + item.num_tokens
            assert item.token_ids == request.all_token_ids[start:end]
            assert len(item.block_ids) * BLOCK_SIZE >= end, "tokens without slots"
            for pos in range(start):
                block_id = item.block_ids[pos // BLOCK_SIZE]
                assert self.gpu[block_id][pos % BLOCK_SIZE] == request.all_token_ids[pos], (
                    f"{item.request_id} reads the wrong K/V at {pos}"
                )
            for pos in range(start, end):
                block = pool.blocks[item.block_ids[pos // BLOCK_SIZE]]
                assert block.ref_cnt == 1, f"write into shared {block}"
                assert block.block_hash is None, f"write into cached {block}"
                self.gpu[block.block_id][pos % BLOCK_SIZE] = request.all_token_ids[pos]
            if item.needs_sample:
                for request_id in (item.request_id, *item.fork_request_ids):
                    sampled[request_id] = 7 + (next(_ids) % 3)
        return sampled

    def _step(self) -> None:
        out = self.scheduler.schedule()
        assert out.num_batched_tokens <= self.scheduler.config.max_num_batched_tokens
        # Beams fork past max_num_seqs (the engine admits a search only if all its beams fit).
        num_beams = sum(item.request_id in self.beam_ids for item in out.scheduled)
        assert len(out.scheduled) - num_beams <= self.scheduler.config.max_num_seqs
        assert not (out.blocks_to_swap_in and out.blocks_to_swap_out), "swap in and out in one step"
        if self.scheduler.config.preemption_mode == "recompute":
            assert not out.blocks_to_swap_out
        sampled = self._execute(out)
        self.scheduler.update_from_output(out, sampled)
        self.num_steps += 1

    def _decide_beams(self, fork: bool) -> None:
        """Stand-in for the engine's beam search: each sampled beam continues, maybe forks, or ends."""
        for beam_id in sorted(self.scheduler._awaiting_beam_step):
            beam = self.scheduler.requests[beam_id]
            if beam.num_output_tokens >= beam.stop.max_tokens or beam.num_tokens + 1 >= MAX_MODEL_LEN:
                self.scheduler.finish_requests([beam_id], RequestStatus.FINISHED_STOPPED)
                continue
            if fork and len(self.beam_ids) < 12:
                child_id = f"{beam_id}.{next(_ids)}"
                self.scheduler.fork_beam(beam_id, child_id)
                self.scheduler.extend_beam(child_id, 8)
                self.beam_ids.add(child_id)
                self.submitted.append(child_id)
            self.scheduler.extend_beam(beam_id, 7)

    # -- rules -----------------------------------------------------------------------------------

    @rule(
        prompt=st.lists(st.integers(0, 2), min_size=1, max_size=44),
        max_tokens=st.integers(1, 14),
        n=st.sampled_from([1, 1, 1, 2, 3]),
    )
    def add(self, prompt: list[int], max_tokens: int, n: int) -> None:
        # A tiny alphabet makes shared prefixes (prefix-cache hits) common.
        stop = StopCriteria(max_tokens=max_tokens, eos_token_id=EOS)
        parent = Request(f"r{next(_ids)}", prompt, stop)
        try:
            self.scheduler.add_request(parent)
        except RequestRejectedError:
            assert len(prompt) >= MAX_MODEL_LEN
            return
        children = [Request(f"{parent.request_id}#{i}", prompt, stop) for i in range(1, n)]
        if children:
            self.scheduler.add_fork_children(parent.request_id, children)
        self.submitted += [parent.request_id, *(c.request_id for c in children)]

    @rule(prompt=st.lists(st.integers(0, 2), min_size=1, max_size=20), max_tokens=st.integers(1, 8))
    def add_beam(self, prompt: list[int], max_tokens: int) -> None:
        beam = Request(f"b{next(_ids)}", prompt, StopCriteria(max_tokens=max_tokens), is_beam=True)
        self.scheduler.add_request(beam)
        self.beam_ids.add(beam.request_id)
        self.submitted.append(beam.request_id)

    @rule()
    def step(self) -> None:
        self._step()

    @rule(fork=st.booleans())
    def beam_step(self, fork: bool) -> None:
        self._decide_beams(fork)

    @precondition(lambda self: self.submitted)
    @rule(data=st.data())
    def abort(self, data: st.DataObject) -> None:
        request_id = data.draw(st.sampled_from(self.submitted))
        self.scheduler.finish_requests([request_id], RequestStatus.FINISHED_ABORTED)

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        scheduler = self.scheduler
        scheduler.check_invariants()  # free + referenced == all, ref counts == tables, swap slots
        kv = scheduler.kv
        for request in scheduler.running:
            table = kv.block_tables[request.request_id]
            assert len(table) * BLOCK_SIZE >= request.num_computed_tokens
            for pos in range(request.num_computed_tokens):
                assert (
                    self.gpu[table[pos // BLOCK_SIZE].block_id][pos % BLOCK_SIZE]
                    == request.all_token_ids[pos]
                )
        for request in scheduler.swapped:
            table = kv.swapped_tables[request.request_id]
            for pos in range(request.num_computed_tokens):
                assert (
                    self.cpu[table[pos // BLOCK_SIZE].block_id][pos % BLOCK_SIZE]
                    == request.all_token_ids[pos]
                )
        for block in kv.pool.blocks:
            if block.block_hash is not None and block.ref_cnt > 0:
                assert None not in self.gpu[block.block_id], f"cached {block} is not full"

    def teardown(self) -> None:
        if not hasattr(self, "scheduler"):
            return
        # Liveness: with no new arrivals every request finishes (no starvation), and then the GPU pool
        # and the swap space are whole again.
        for _ in range(800):
            if not self.scheduler.has_unfinished_requests():
                break
            self._step()
            self._decide_beams(fork=False)
            self.invariants_hold()
        assert not self.scheduler.has_unfinished_requests(), "requests starved"
        kv = self.scheduler.kv
        assert kv.num_free_blocks == kv.num_blocks
        assert kv.num_free_cpu_blocks == kv.num_cpu_blocks
        assert not kv.block_tables and not kv.swapped_tables


PreemptionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestPreemptionInvariants = PreemptionMachine.TestCase
