"""Request state as the scheduler sees it: tokens, how many are computed, and why it finished."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RequestStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    PREEMPTED = "preempted"  # by recompute: back in the waiting queue, holding nothing
    SWAPPED = "swapped"  # by swapping: its blocks wait in the CPU swap space
    FINISHED_STOPPED = "stop"
    FINISHED_LENGTH = "length"
    FINISHED_ABORTED = "abort"

    @property
    def is_finished(self) -> bool:
        # NOTE: by value: a str's hash is cached in C, an Enum member's goes through Python (hot path).
        return self._value_ in _FINISHED_VALUES

    @property
    def finish_reason(self) -> str | None:
        """The OpenAI/vLLM ``finish_reason`` string, or None while unfinished."""
        return self.value if self.is_finished else None


_FINISHED_VALUES = frozenset(
    {
        RequestStatus.FINISHED_STOPPED.value,
        RequestStatus.FINISHED_LENGTH.value,
        RequestStatus.FINISHED_ABORTED.value,
    }
)


@dataclass(slots=True, frozen=True)
class StopCriteria:
    """Token-level stop rules the scheduler applies itself (stop *strings* are the engine's job)."""

    max_tokens: int  # output tokens, already capped so prompt + output <= max_model_len
    min_tokens: int = 0
    eos_token_id: int | None = None  # None when ignore_eos or the model has none
    stop_token_ids: frozenset[int] = frozenset()


@dataclass(slots=True, eq=False)
class Request:
    """One sequence. ``num_computed_tokens`` catches up with ``num_tokens``; the gap is the work left.

    A prefill is a request whose gap is the prompt; a decode one whose gap is one sampled token. After
    preemption by recompute, ``num_computed_tokens`` falls back to 0 and the whole sequence (prompt and
    outputs so far) is computed again as one prefill; after preemption by swapping it is kept, and the
    request resumes where it stopped once its blocks are back.
    """

    request_id: str
    prompt_token_ids: list[int]
    stop: StopCriteria
    arrival_time: float = 0.0
    # Opaque to core/: the worker's sampling parameters travel with the request to the model runner.
    sampling_params: Any = None
    status: RequestStatus = RequestStatus.WAITING
    output_token_ids: list[int] = field(default_factory=list)
    num_computed_tokens: int = 0
    num_preemptions: int = 0
    stop_reason: int | str | None = None
    # Isolates this tenant's prefix-cache entries: blocks hash differently under another salt.
    cache_salt: str | None = None
    # Prompt tokens served from the prefix cache at first admission.
    num_cached_tokens: int = 0
    # Parallel sampling: the request whose prefill this one waits for, then forks from.
    parent_id: str | None = None
    # FCFS rank, set when the scheduler takes the request; forks (n > 1 branches, beams) share their
    # parent's. Running and waiting requests are kept in this order: preemption takes the highest.
    arrival_order: int = 0
    # Beam search: the token after each sample is chosen by the request's beam search among all its
    # beams, not by the sampler; the scheduler appends nothing and checks no stop rule itself.
    is_beam: bool = False
    # Beam search: the search's width. Its beams hold that many seats of ``max_num_seqs`` from the first
    # beam's admission on, since beams fork (into running) as the search goes.
    beam_width: int = 1
    # Prompt then outputs: the tokens whose K/V the sequence needs, set from the prompt at creation.
    all_token_ids: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not self.prompt_token_ids:
            raise ValueError(f"request {self.request_id!r} has an empty prompt")
        self.all_token_ids = list(self.prompt_token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.all_token_ids)

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished

    def fork(self, request_id: str) -> Request:
        """A copy of this sequence under a new id, tokens and all; its K/V blocks are the KV manager's."""
        child = Request(
            request_id=request_id,
            prompt_token_ids=self.prompt_token_ids,
            stop=self.stop,
            arrival_time=self.arrival_time,
            sampling_params=self.sampling_params,
            cache_salt=self.cache_salt,
            is_beam=self.is_beam,
            beam_width=self.beam_width,
        )
        child.output_token_ids = list(self.output_token_ids)
        child.all_token_ids = list(self.all_token_ids)
        child.num_computed_tokens = self.num_computed_tokens
        child.arrival_order = self.arrival_order
        return child

    def append_output_token(self, token_id: int) -> None:
        self.output_token_ids.append(token_id)
        self.all_token_ids.append(token_id)

    def check_token_stop(self) -> RequestStatus | None:
        """Finish status after the newest output token, or None to continue."""
        # NOTE: once per sequence per step: locals, no properties.
        num_output_tokens = len(self.output_token_ids)
        stop = self.stop
        if num_output_tokens >= stop.min_tokens:
            last = self.output_token_ids[-1]
            if last == stop.eos_token_id or last in stop.stop_token_ids:
                self.stop_reason = None if last == stop.eos_token_id else last
                return RequestStatus.FINISHED_STOPPED
        if num_output_tokens >= stop.max_tokens:
            return RequestStatus.FINISHED_LENGTH
        return None
