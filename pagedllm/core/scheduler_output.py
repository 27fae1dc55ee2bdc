"""What passes between the scheduler and the worker each step: plain data, no tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class NewRequestData:
    """Sent the first time the worker sees a request, so it can keep per-request sampling state."""

    request_id: str
    prompt_token_ids: list[int]
    sampling_params: Any


# The input token of a row whose token the step before samples (``token_from_previous_step``).
STAND_IN: tuple[int] = (0,)


@dataclass(slots=True)
class ScheduledRequest:
    """One sequence's share of the step: its new tokens and where its K/V live."""

    request_id: str
    token_ids: Sequence[int]  # the tokens to compute this step
    start_position: int  # num_computed_tokens before the step: position of token_ids[0]
    # The whole block table, logical block i -> physical block block_ids[i]. From the KV manager, a
    # tuple that stays the same object from step to step while the table is unchanged.
    block_ids: Sequence[int]
    needs_sample: bool  # the step reaches the end of the sequence, so a token is sampled
    # Parallel sampling: the end of this prefill is also sampled for these requests, which then fork
    # from this one (sharing its blocks) and continue on their own.
    fork_request_ids: Sequence[str] = ()
    # Async scheduling (``Scheduler.schedule_ahead``): the one token to compute is the one the previous
    # step samples for this request, not known on the host yet; the worker takes it from that step's
    # sampled ids on the device, and ``token_ids`` holds a stand-in (``STAND_IN``) of the right length.
    token_from_previous_step: bool = False
    # The request's ``arrival_order`` when scheduled: with a step in flight (async scheduling) a
    # request can finish or be aborted and its id be reused by a new request before the step's tokens
    # come back; they must not land on the newcomer.
    arrival_order: int = field(kw_only=True)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(slots=True)
class SchedulerOutput:
    scheduled: list[ScheduledRequest] = field(default_factory=list)
    new_requests: list[NewRequestData] = field(default_factory=list)
    # Requests gone since the last step: the worker drops their per-request state.
    finished_request_ids: set[str] = field(default_factory=set)
    preempted_request_ids: set[str] = field(default_factory=set)
    # (src, dst) physical block pairs to copy in every layer before attention: copy-on-write.
    block_copies: list[tuple[int, int]] = field(default_factory=list)
    # Swapping, applied first (out, then in, then the copies): (gpu block, cpu block) pairs to move out
    # to the swap space, and (cpu block, gpu block) pairs to move back in.
    blocks_to_swap_out: list[tuple[int, int]] = field(default_factory=list)
    blocks_to_swap_in: list[tuple[int, int]] = field(default_factory=list)
    # The preempted requests whose blocks moved to the swap space (a subset of preempted_request_ids).
    swapped_out_request_ids: set[str] = field(default_factory=set)

    @property
    def num_batched_tokens(self) -> int:
        return sum(s.num_tokens for s in self.scheduled)

    @property
    def is_empty(self) -> bool:
        """Nothing to run. NOTE: a step may still carry swaps (everyone preempted); apply them anyway."""
        return not self.scheduled
