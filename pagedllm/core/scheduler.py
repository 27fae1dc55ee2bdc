"""Continuous batching: which sequences run this step, how many tokens each, and who gets preempted."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pagedllm.core.block_hash import BlockHash
from pagedllm.core.block_pool import KVCacheBlock
from pagedllm.core.kv_cache_manager import KVCacheManager, KVCacheStats, cdiv
from pagedllm.core.request import Request, RequestStatus
from pagedllm.core.request_queue import WaitingQueue
from pagedllm.core.scheduler_output import STAND_IN, NewRequestData, ScheduledRequest, SchedulerOutput


class RequestRejectedError(ValueError):
    """A request that can never be served (it would not fit even alone in the whole pool)."""


# auto: swap a request with at least swap_threshold_tokens computed tokens, recompute a shorter one.
PREEMPTION_MODES = ("auto", "recompute", "swap")
# NOTE: why 256: recomputing a sequence costs a prefill of its tokens, which joins a step's token budget
# almost for free while it is short (a decode step is memory-bound, a few hundred extra tokens ride
# along) but grows with the length (and attention with its square); a swap costs two transfers of its
# K/V bytes, linear and cheap per token over PCIe, but a fixed latency per step and swap space that
# could hold someone else. Below ~256 tokens (16 blocks of 16) the recompute is the cheaper; above it
# the swap. Tunable (`swap_threshold_tokens`), and ignored when `preemption_mode` forces one mode.
DEFAULT_SWAP_THRESHOLD_TOKENS = 256


@dataclass(slots=True, frozen=True)
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    max_model_len: int = 2048
    enable_chunked_prefill: bool = True
    preemption_mode: str = "auto"  # "auto", "recompute" or "swap" (swap needs a swap space)
    swap_threshold_tokens: int = DEFAULT_SWAP_THRESHOLD_TOKENS

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "max_model_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.preemption_mode not in PREEMPTION_MODES:
            raise ValueError(f"preemption_mode={self.preemption_mode!r}; choose one of {PREEMPTION_MODES}")
        if not isinstance(self.swap_threshold_tokens, int) or self.swap_threshold_tokens < 0:
            raise ValueError(
                f"swap_threshold_tokens must be an integer >= 0, got {self.swap_threshold_tokens!r}"
            )
        if not self.enable_chunked_prefill and self.max_num_batched_tokens < self.max_model_len:
            raise ValueError(
                f"without chunked prefill max_num_batched_tokens ({self.max_num_batched_tokens}) must be "
                f">= max_model_len ({self.max_model_len}), or a long prompt could never be scheduled"
            )


def _arrival_order(request: Request) -> int:
    return request.arrival_order


class Scheduler:
    """No prefill or decode phases: each running request's ``num_computed_tokens`` catches up with its
    ``num_tokens`` under one token budget per step.

    Order of a step: running requests first (oldest first; each gets what is left of its prompt, chunked
    to the budget, or its one new token), then swapped and waiting requests together, strictly by
    arrival, while the budget, ``max_num_seqs`` and free blocks allow. When a running request cannot get
    a block, the newest running request is preempted, by recompute (its blocks are freed and it goes
    back to the waiting queue, ahead of every request that arrived after it) or by swapping (its blocks
    move to the CPU swap space and it waits in ``swapped`` to move back: ``_preemption_mode`` says
    which). "Oldest" is the order requests were added in (``arrival_order``); forks share their
    parent's. Running, swapped and waiting are all kept in that order, so the oldest request always
    makes progress: nothing younger can take its blocks, and a swapped request resumes before anything
    that arrived after it is admitted.

    Beam search: a beam that has been sampled waits, holding its blocks, until its siblings have been
    too and the engine chooses the next beams (``fork_beam``, ``extend_beam``, ``finish_requests``).
    The order is what keeps that from deadlocking: a beam can wait on a preempted sibling only while
    nothing younger holds blocks, and the engine admits a beam search only if all its beams fit at once.
    That count shares the prompt's blocks, so preempted beams come back one a step: each finds the
    prompt its sibling's step put back in the prefix cache.
    """

    def __init__(self, config: SchedulerConfig, kv_cache_manager: KVCacheManager) -> None:
        self.config = config
        self.kv = kv_cache_manager
        self.waiting = WaitingQueue()
        self.running: list[Request] = []
        # Preempted by swapping, in arrival order: their blocks are in the KV manager's swap space.
        self.swapped: list[Request] = []
        self.requests: dict[str, Request] = {}
        self._new_request_ids: set[str] = set()  # not yet announced to the worker
        self._finished_since_last_step: set[str] = set()
        # Parallel sampling: children that fork from a parent when its prefill is sampled.
        self._pending_forks: dict[str, list[Request]] = {}
        # Beam search: sampled beams waiting for the engine to choose their next token.
        self._awaiting_beam_step: set[str] = set()
        self._arrival_counter = itertools.count()
        # Whether ``schedule_ahead`` admits waiting requests and continues prefill chunks (False: it
        # declines such steps, as before session 31; A/B runs).
        self.admit_ahead = True
        self.num_preemptions = 0
        self.num_swap_preemptions = 0  # of num_preemptions, those by swapping

    # -- request lifecycle -------------------------------------------------------------------------

    def add_request(self, request: Request) -> None:
        if request.request_id in self.requests:
            raise ValueError(f"request id {request.request_id!r} is already in use")
        if request.num_tokens >= self.config.max_model_len:
            raise RequestRejectedError(
                f"request {request.request_id!r}: prompt has {request.num_tokens} tokens, but max_model_len "
                f"is {self.config.max_model_len} (the prompt plus at least one output token must fit)"
            )
        if not self.kv.can_ever_fit(request.num_tokens + 1):
            raise RequestRejectedError(
                f"request {request.request_id!r} needs {request.num_tokens + 1} token slots, more than the "
                f"whole KV cache holds ({self.kv.num_blocks} blocks of {self.kv.block_size})"
            )
        request.arrival_order = next(self._arrival_counter)
        self.requests[request.request_id] = request
        self.waiting.append(request)
        self._new_request_ids.add(request.request_id)

    def add_fork_children(self, parent_id: str, children: list[Request]) -> None:
        """Children of a parallel-sampling request: each gets its own first token sampled from the
        parent's prefill and then continues on the parent's shared blocks (no prefill of their own)."""
        parent = self.requests[parent_id]
        assert parent.num_output_tokens == 0 and parent_id not in self._pending_forks
        # NOTE: the engine checks n <= max_num_seqs first (a ValueError naming n), so this never fires.
        assert 1 + len(children) <= self.config.max_num_seqs, "n > max_num_seqs would never be admitted"
        for child in children:
            if child.request_id in self.requests:
                raise ValueError(f"request id {child.request_id!r} is already in use")
            child.parent_id = parent_id
            child.arrival_order = parent.arrival_order
            self.requests[child.request_id] = child
            self._new_request_ids.add(child.request_id)
        self._pending_forks[parent_id] = list(children)

    def fork_beam(self, parent_id: str, child_id: str) -> Request:
        """A new beam branching off a sampled one: it shares every block of the parent (copy-on-write)
        and, like the parent, waits for ``extend_beam`` to give it its token."""
        parent = self.requests[parent_id]
        assert parent.is_beam and parent_id in self._awaiting_beam_step, parent_id
        if child_id in self.requests:
            raise ValueError(f"request id {child_id!r} is already in use")
        child = parent.fork(child_id)
        self.kv.fork(parent, child)
        child.status = RequestStatus.RUNNING
        self.requests[child_id] = child
        self._new_request_ids.add(child_id)
        self._add_running(child)
        self._awaiting_beam_step.add(child_id)
        return child

    def extend_beam(self, request_id: str, token_id: int) -> None:
        """A sampled beam continues with the token its beam search chose for it."""
        request = self.requests[request_id]
        assert request.is_beam and request_id in self._awaiting_beam_step, request_id
        self._awaiting_beam_step.discard(request_id)
        request.append_output_token(token_id)

    def finish_requests(self, request_ids: Iterable[str], status: RequestStatus) -> None:
        """Finish (stop string, abort) requests wherever they are; unknown or finished ids are ignored."""
        assert status.is_finished
        finished_running = False
        for request_id in request_ids:
            request = self.requests.get(request_id)
            if request is None or request.is_finished:
                continue
            if request.status == RequestStatus.RUNNING:
                finished_running = True
            elif request.status == RequestStatus.SWAPPED:
                self.swapped.remove(request)
            elif request.parent_id is not None and request.parent_id in self._pending_forks:
                self._pending_forks[request.parent_id].remove(request)
            else:
                self.waiting.remove(request_id)
            self._finish(request, status)
        if finished_running:
            self.running = [r for r in self.running if not r.is_finished]

    def _finish(self, request: Request, status: RequestStatus) -> None:
        request.status = status
        self.kv.free(request)
        self._awaiting_beam_step.discard(request.request_id)
        del self.requests[request.request_id]
        for orphan in self._pending_forks.pop(request.request_id, []):
            # The parent ended before its prefill was sampled: its children never start.
            self._finish(orphan, status)
        if request.request_id in self._new_request_ids:
            self._new_request_ids.discard(request.request_id)  # the worker never saw it
        else:
            self._finished_since_last_step.add(request.request_id)

    @property
    def num_unfinished_requests(self) -> int:
        return len(self.requests)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    # -- one step ----------------------------------------------------------------------------------

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput(finished_request_ids=self._finished_since_last_step)
        self._finished_since_last_step = set()
        budget = self.config.max_num_batched_tokens
        scheduled: list[tuple[Request, int]] = []  # (request, its new tokens this step)
        preempted: list[Request] = []

        # Running requests, oldest first. Victims of preemption come from the back of `running`.
        # NOTE: the hot loop of a step (once per running request): locals instead of attribute lookups.
        running = self.running
        awaiting = self._awaiting_beam_step
        append_slots = self.kv.append_slots
        index = 0
        while index < len(running) and budget > 0:
            request = running[index]
            if awaiting and request.request_id in awaiting:
                index += 1
                continue
            num_new = min(len(request.all_token_ids) - request.num_computed_tokens, budget)
            assert num_new > 0, f"{request.request_id} is running with nothing to compute"
            while append_slots(request, num_new) is None:
                victim = running.pop()
                self._preempt(victim, out)
                preempted.append(victim)
                if victim is request:
                    break
            else:
                scheduled.append((request, num_new))
                budget -= num_new
                index += 1
                continue
            break  # the request preempted itself: nobody after it is left either

        # Swapped and waiting requests, strictly by arrival (no skipping: the oldest goes first or no one
        # does). After a preemption the pool is full: admitting would only thrash.
        # NOTE: also why no swap-in shares a step with a swap-out: a swap slot or block freed by one
        # could be the other's destination before the worker has read it.
        num_seats, searches = self._seats_taken()
        searches_admitted_now: set[int] = set()
        while not preempted and budget > 0:
            candidate = self._next_to_admit()
            if candidate is None:
                break
            request = candidate
            if request.is_beam and request.arrival_order in searches_admitted_now:
                # One beam of a search a step: a prompt's blocks reach the prefix cache only once a step
                # has computed them, so preempted siblings admitted together each recomputed the
                # evicted prompt in private blocks, past what the search was admitted to fit, and their
                # search waited forever on a beam with no block left (found in review, session 35).
                break
            if request.is_beam:  # a preempted beam comes back to a seat its search holds
                needed = 0 if request.arrival_order in searches else request.beam_width
            else:
                needed = 1 + len(self._pending_forks.get(request.request_id, ()))
            if num_seats + needed > self.config.max_num_seqs:
                break
            if request.status == RequestStatus.SWAPPED:
                admitted = self._swap_in(request, budget, out)
            else:
                admitted = self._admit(request, budget)
            if admitted is None:
                break
            num_new = admitted
            num_seats += needed
            if request.is_beam:
                searches.add(request.arrival_order)
                searches_admitted_now.add(request.arrival_order)
            request.status = RequestStatus.RUNNING
            self._add_running(request)
            scheduled.append((request, num_new))
            budget -= num_new

        items = out.scheduled
        for request, num_new in scheduled:
            item = self._scheduled_request(request, num_new)
            items.append(item)
            if self._new_request_ids:
                self._announce(request, item, out)
        out.preempted_request_ids = {r.request_id for r in preempted}
        out.block_copies = self.kv.take_block_copies()
        return out

    def _seats_taken(self) -> tuple[int, set[int]]:
        """(seats of ``max_num_seqs`` the running requests hold, the beam searches among them by
        ``arrival_order``). A request holds one; a parallel-sampling parent also its children's, which
        fork from it when its prefill is sampled; a beam search its ``beam_width``, whatever number of
        beams it runs now: from admission on, or the forks would overflow max_num_seqs."""
        seats = sum(
            len(children)
            for parent_id, children in self._pending_forks.items()
            if self.requests[parent_id].status == RequestStatus.RUNNING
        )
        searches: dict[int, int] = {}
        for request in self.running:
            if request.is_beam:
                searches[request.arrival_order] = request.beam_width
            else:
                seats += 1
        return seats + sum(searches.values()), set(searches)

    def schedule_ahead(self, in_flight: SchedulerOutput) -> SchedulerOutput | None:
        """Async scheduling: the next step, scheduled while ``in_flight`` still runs and before its
        sampled tokens are known, assuming every sequence it samples continues with one more token.

        Each running request the in-flight step samples gets that one token (``token_from_previous_step``:
        the worker reads it from the in-flight step's sampled ids on the device) and a slot for it; one
        whose prefill chunk is in flight gets its next chunk (prompt tokens, known); then waiting
        requests are admitted with the budget and seats left, as ``schedule`` admits them. Nothing else
        about a running request changes until ``update_from_output(in_flight, ...)`` runs. A request the
        in-flight step finishes by length is left out (that stop is known now); one it finishes by EOS, a
        stop token or a stop string computes one token too many, which ``update_from_output`` drops (the
        request is gone by then) and whose slot went back to the pool with the request's blocks. Its seat
        and blocks count as taken for this step: an admission that needs them waits one step.

        A waiting request that would find more of its prompt cached once the in-flight step is done (a
        block that step fills is the next one it looks for) is not admitted yet: it is admitted once
        those blocks are in the prefix cache, with those hits.

        Returns None, having changed nothing that a later ``schedule`` would not do the same, when this
        step is not such a continuation: requests are swapped out, a running request is not in the
        in-flight step (the budget left it out), a beam (running, or first in line) or a parallel-
        sampling fork is involved, a slot would need a preemption, or the step would sample nothing.
        Then the caller waits for ``in_flight`` and calls ``schedule``.
        """
        if self.swapped or self._pending_forks or self._awaiting_beam_step:
            return None
        if self.waiting and (not self.admit_ahead or self.waiting.peek().is_beam):
            return None  # the engine picks a beam's tokens between steps: ``schedule`` admits it
        running = self.running
        budget = self.config.max_num_batched_tokens
        if not running or len(running) > budget:
            return None
        in_flight_items = {item.request_id: item for item in in_flight.scheduled}
        max_model_len = self.config.max_model_len
        decodes: list[Request] = []
        chunks: list[tuple[Request, int]] = []  # (request, the chunk's first position)
        for request in running:
            item = in_flight_items.get(request.request_id)
            if request.is_beam or item is None:
                return None
            if not item.needs_sample:
                if not self.admit_ahead:
                    return None
                # A prefill chunk is in flight: the next chunk follows it.
                chunks.append((request, item.start_position + len(item.token_ids)))
                continue
            # After the in-flight token: finished by length for sure, whatever that token is.
            if (
                len(request.output_token_ids) + 1 >= request.stop.max_tokens
                or len(request.all_token_ids) + 1 >= max_model_len
            ):
                continue
            decodes.append(request)
        # The in-flight step computes each decode's last known token; this one computes the next.
        # NOTE: decodes take their token of the budget first, chunks share what is left. Slots taken
        # here for requests before a failing one stay in their tables: the ``schedule`` that follows
        # asks for the same slots and finds them there.
        tables = self.kv.append_decode_slots(decodes)
        if tables is None:
            return None
        budget -= len(decodes)
        out = SchedulerOutput()
        items = out.scheduled = [
            ScheduledRequest(
                request.request_id,
                STAND_IN,
                len(request.all_token_ids),
                block_ids,
                True,
                (),
                True,
                arrival_order=request.arrival_order,
            )
            for request, block_ids in zip(decodes, tables, strict=True)
        ]
        for request, start in chunks:
            num_new = min(request.num_tokens - start, budget)
            if num_new <= 0 or self.kv.append_slots(request, num_new, start) is None:
                return None
            budget -= num_new
            items.append(self._scheduled_request(request, num_new, start))
        if not any(item.needs_sample for item in items):
            return None
        if self.waiting and budget > 0:
            self._admit_ahead(out, budget, in_flight)
        out.finished_request_ids = self._finished_since_last_step
        self._finished_since_last_step = set()
        out.block_copies = self.kv.take_block_copies()
        return out

    def _admit_ahead(self, out: SchedulerOutput, budget: int, in_flight: SchedulerOutput) -> None:
        """Waiting requests, oldest first, into a step scheduled ahead of ``in_flight``: as ``schedule``
        admits them, every running request keeping its seat (the in-flight step's stops are not known)."""
        num_seats = len(self.running)
        # The blocks the in-flight step fills (known tokens only): registered in the prefix cache when
        # its tokens come back, so a request looking for one of them waits until then.
        filling: set[BlockHash] = set()
        for item in in_flight.scheduled:
            request = self.requests.get(item.request_id)
            # NOTE: the same request, not a newer one under a reused id (see ``update_from_output``).
            if (
                request is None
                or item.token_from_previous_step
                or request.arrival_order != item.arrival_order
            ):
                continue
            filling.update(self.kv.hashes_filled_by(request, item.start_position, len(item.token_ids)))
        while budget > 0 and num_seats < self.config.max_num_seqs and self.waiting:
            request = self.waiting.peek()
            if request.is_beam:
                break  # see ``schedule_ahead``
            computed_blocks = self.kv.get_computed_blocks(request)
            if filling and self.kv.next_block_hash(request, len(computed_blocks)) in filling:
                break
            num_new = self._admit(request, budget, computed_blocks)
            if num_new is None:
                break
            num_seats += 1
            request.status = RequestStatus.RUNNING
            self._add_running(request)
            item = self._scheduled_request(request, num_new)
            out.scheduled.append(item)
            if self._new_request_ids:
                self._announce(request, item, out)
            budget -= num_new

    def prepare_admissions(self) -> None:
        """Hashes the full blocks of the waiting requests the next ``schedule`` may admit (the front ones,
        up to a step's token budget), which it would otherwise hash itself.

        For the engine to call while a step runs on the device and the host would only wait for it: a
        mixed step is scheduled after the one before it has finished, so whatever ``schedule`` does then
        leaves the device idle. Admitting 32 prompts of 512 tokens hashes 1,024 blocks, most of
        ``schedule``'s 3-5 ms on an H100 host (session 30)."""
        budget = self.config.max_num_batched_tokens
        for request in self.waiting:
            if budget <= 0:
                break
            self.kv.hash_full_blocks_ahead(request)
            budget -= request.num_tokens - request.num_computed_tokens

    def _next_to_admit(self) -> Request | None:
        """The oldest of the swapped and the waiting requests."""
        swapped = self.swapped[0] if self.swapped else None
        waiting = self.waiting.peek() if self.waiting else None
        if swapped is None or waiting is None:
            return swapped or waiting
        return swapped if swapped.arrival_order <= waiting.arrival_order else waiting

    def _admit(
        self, request: Request, budget: int, computed_blocks: list[KVCacheBlock] | None = None
    ) -> int | None:
        """Give the front waiting request blocks for its next chunk; its token count, or None.
        ``computed_blocks``: its prefix hits, when the caller has looked them up."""
        if computed_blocks is None:
            computed_blocks = self.kv.get_computed_blocks(request)
        num_computed = len(computed_blocks) * self.kv.block_size
        num_new = request.num_tokens - num_computed
        if num_new > budget:
            if not self.config.enable_chunked_prefill:
                return None
            num_new = budget
        if self.kv.allocate(request, num_new, computed_blocks) is None:
            return None
        request.num_computed_tokens = num_computed
        if request.num_preemptions == 0:
            request.num_cached_tokens = num_computed
        self.waiting.popleft()
        return num_new

    def _swap_in(self, request: Request, budget: int, out: SchedulerOutput) -> int | None:
        """Bring the oldest swapped request's blocks back and give it slots for its next tokens; its
        token count, or None (nothing taken) when the pool cannot hold both."""
        num_new = min(request.num_tokens - request.num_computed_tokens, budget)
        assert num_new > 0, f"{request.request_id} was swapped with nothing to compute"
        num_swapped = self.kv.num_blocks_to_swap_in(request)
        num_growth = max(cdiv(request.num_computed_tokens + num_new, self.kv.block_size) - num_swapped, 0)
        if num_swapped + num_growth > self.kv.num_free_blocks:
            return None
        pairs = self.kv.swap_in(request)
        assert pairs is not None
        out.blocks_to_swap_in.extend(pairs)
        grown = self.kv.append_slots(request, num_new)  # private blocks: never a copy
        assert grown is not None
        self.swapped.pop(0)
        return num_new

    def _scheduled_request(
        self, request: Request, num_new: int, start: int | None = None
    ) -> ScheduledRequest:
        """The request's ``num_new`` tokens from ``start`` (default: its computed tokens; a step scheduled
        ahead passes where the chunk in flight ends)."""
        if start is None:
            start = request.num_computed_tokens
        request_id = request.request_id
        all_token_ids = request.all_token_ids
        item = ScheduledRequest(
            request_id,
            all_token_ids[start : start + num_new],
            start,
            self.kv.get_block_ids(request_id),
            start + num_new == len(all_token_ids),
            arrival_order=request.arrival_order,
        )
        if item.needs_sample and self._pending_forks:
            children = self._pending_forks.get(request_id)
            if children:
                item.fork_request_ids = [child.request_id for child in children]
        return item

    def _announce(self, request: Request, item: ScheduledRequest, out: SchedulerOutput) -> None:
        """Send the worker the request (and the children forking from it) the first time it runs."""
        for announced in [request, *(self.requests[i] for i in item.fork_request_ids)]:
            if announced.request_id in self._new_request_ids:
                self._new_request_ids.discard(announced.request_id)
                out.new_requests.append(
                    NewRequestData(
                        announced.request_id, announced.prompt_token_ids, announced.sampling_params
                    )
                )

    def _add_running(self, request: Request) -> None:
        bisect.insort_right(self.running, request, key=_arrival_order)

    def _preemption_mode(self, request: Request) -> str:
        """Swap or recompute: the configured mode, by cost under "auto"; recompute whenever swapping
        cannot serve (no swap space, or full; a block shared with another sequence; a beam, whose
        search forgets the preempted beam's report and recomputes it anyway)."""
        mode = self.config.preemption_mode
        if mode == "recompute" or request.is_beam:
            return "recompute"
        if mode == "auto" and request.num_computed_tokens < self.config.swap_threshold_tokens:
            return "recompute"
        return "swap" if self.kv.can_swap_out(request) else "recompute"

    def _preempt(self, request: Request, out: SchedulerOutput) -> None:
        self._awaiting_beam_step.discard(request.request_id)
        request.num_preemptions += 1
        self.num_preemptions += 1
        if self._preemption_mode(request) == "swap":
            out.blocks_to_swap_out.extend(self.kv.swap_out(request))
            out.swapped_out_request_ids.add(request.request_id)
            request.status = RequestStatus.SWAPPED
            bisect.insort_right(self.swapped, request, key=_arrival_order)
            self.num_swap_preemptions += 1
            return
        self.kv.free(request)
        request.status = RequestStatus.PREEMPTED
        request.num_computed_tokens = 0
        self.waiting.insert_in_arrival_order(request)

    def live_request(self, item: ScheduledRequest) -> Request | None:
        """The request a step's row was scheduled for, or None if it finished or was aborted since (its
        id maybe reused by a newer request: ``arrival_order`` tells them apart)."""
        request = self.requests.get(item.request_id)
        if request is None or request.is_finished or request.arrival_order != item.arrival_order:
            return None
        return request

    def update_from_output(
        self, scheduler_output: SchedulerOutput, sampled_token_ids: dict[str, int]
    ) -> list[Request]:
        """Advance computed tokens, append sampled tokens, finish on token-level stops.

        Returns the requests that received a token this step (finished ones included).
        """
        updated: list[Request] = []
        any_finished = False
        # NOTE: the other hot loop of a step (once per scheduled request): locals, and no per-request
        # lists on the common path (a decode without forks).
        requests = self.requests
        cache_full_blocks = self.kv.cache_full_blocks if self.kv.enable_prefix_caching else None
        max_model_len = self.config.max_model_len
        for item in scheduler_output.scheduled:
            # ``live_request``, inlined: this loop keeps to locals (the NOTE above).
            request = requests.get(item.request_id)
            if request is None or request.is_finished or request.arrival_order != item.arrival_order:
                continue  # finished or aborted while the step ran (its id maybe reused since)
            request.num_computed_tokens += len(item.token_ids)
            if cache_full_blocks is not None:
                cache_full_blocks(request)
            if not item.needs_sample:
                continue
            if request.is_beam:
                self._awaiting_beam_step.add(request.request_id)  # the engine chooses its token
                continue
            sampled_requests: tuple[Request, ...] = (request,)
            if item.fork_request_ids:
                sampled_requests += tuple(self._fork_children(request, item.fork_request_ids))
            for sampled in sampled_requests:
                sampled.append_output_token(sampled_token_ids[sampled.request_id])
                updated.append(sampled)
                status = sampled.check_token_stop()
                if status is None and len(sampled.all_token_ids) >= max_model_len:
                    status = RequestStatus.FINISHED_LENGTH
                if status is not None:
                    self._finish(sampled, status)
                    any_finished = True
        if any_finished:
            self.running = [r for r in self.running if not r.is_finished]
        return updated

    def _fork_children(self, parent: Request, child_ids: Sequence[str]) -> list[Request]:
        """Start the children whose first token was sampled from ``parent``'s prefill this step."""
        if not child_ids:
            return []
        pending = self._pending_forks.pop(parent.request_id)
        children = [child for child in pending if child.request_id in child_ids]
        for child in children:
            self.kv.fork(parent, child)
            child.num_computed_tokens = parent.num_computed_tokens
            child.status = RequestStatus.RUNNING
            self._add_running(child)
        # Children aborted after the step was scheduled are gone from `pending` already.
        return children

    # -- observability -----------------------------------------------------------------------------

    def kv_cache_stats(self) -> KVCacheStats:
        return self.kv.stats(self.running)

    def check_invariants(self) -> None:
        self.kv.check_invariants()
        for request in self.running:
            assert request.status == RequestStatus.RUNNING
            assert request.request_id in self.kv.block_tables
            assert request.request_id not in self.kv.swapped_tables
        for request in self.waiting:
            assert request.request_id not in self.kv.block_tables, f"{request.request_id} waits with blocks"
            assert request.request_id not in self.kv.swapped_tables, f"{request.request_id} waits swapped"
        for request in self.swapped:
            assert request.status == RequestStatus.SWAPPED
            assert request.request_id in self.kv.swapped_tables, f"{request.request_id} swapped without slots"
            assert request.num_computed_tokens < request.num_tokens
        assert {r.request_id for r in self.swapped} == self.kv.swapped_tables.keys(), "orphan swap slots"
        for queue in (self.running, self.swapped):
            orders = [r.arrival_order for r in queue]
            assert orders == sorted(orders), "requests out of arrival order"
        running_ids = {r.request_id for r in self.running}
        assert self._awaiting_beam_step <= running_ids, "a beam waits for its token without running"
        assert self._seats_taken()[0] <= self.config.max_num_seqs, "more seats taken than max_num_seqs"
        num_pending = sum(len(children) for children in self._pending_forks.values())
        num_queued = len(self.running) + len(self.waiting) + len(self.swapped) + num_pending
        assert num_queued == len(self.requests), "a request is in no queue, or in two"
