"""What the server's two processes say to each other (pickled over ``multiprocessing`` pipes).

API process -> engine core: one ``list[Command]`` per event-loop tick (adds and aborts batched).
Engine core -> API process: ``CoreReady`` (or ``CoreFailed``) once, then one ``StepOutput`` per step:
what each request gained in that step (deltas, never cumulative copies), plus the engine's counters.

NOTE: the per-step shapes are NamedTuples, not dataclasses: they pickle as a class reference and a
tuple, which keeps the ~256 deltas of a step cheap to send (the core pays for every microsecond).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pagedllm.outputs import SampleLogprobs
from pagedllm.sampling_params import SamplingParams

# -- API process -> engine core ------------------------------------------------------------------


class AddRequest(NamedTuple):
    request_id: str
    prompt_token_ids: list[int]  # already validated and tokenized by the API process
    params: SamplingParams


class AbortRequests(NamedTuple):
    request_ids: list[str]


class ShutdownCore(NamedTuple):
    """Finish the current step and exit (the API process is going away)."""


Command = AddRequest | AbortRequests | ShutdownCore


# -- engine core -> API process ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoreReady:
    """The engine is built: what the API process needs to validate requests without the model."""

    pid: int
    model_name: str
    vocab_size: int
    max_model_len: int
    stats: CoreStats  # what /metrics shows before the first step


@dataclass(frozen=True, slots=True)
class CoreFailed:
    """The engine could not start, or a step raised: the core exits after sending this."""

    message: str


class SequenceDelta(NamedTuple):
    """What one of a request's ``n`` sequences gained in one step."""

    index: int
    new_token_ids: list[int]
    new_text: str  # "" without a tokenizer, or while text is held back (partial character, stop string)
    new_logprobs: SampleLogprobs | None  # one entry per new token when the request asked for logprobs
    cumulative_logprob: float | None
    finish_reason: str | None
    stop_reason: int | str | None


class RequestDelta(NamedTuple):
    request_id: str
    sequences: list[SequenceDelta]
    finished: bool
    num_cached_tokens: int


class CoreStats(NamedTuple):
    """The engine's gauges and running totals, O(1) to read, sent with every step (``/metrics``)."""

    num_running: int
    num_waiting: int
    num_swapped: int
    num_blocks: int
    num_free_blocks: int
    num_cpu_blocks: int
    num_free_cpu_blocks: int
    num_preemptions: int
    num_swap_preemptions: int
    prefix_cache_queries: int
    prefix_cache_hits: int

    def as_dict(self) -> dict[str, int]:
        stats = self._asdict()
        stats["num_used_blocks"] = self.num_blocks - self.num_free_blocks
        stats["num_recompute_preemptions"] = self.num_preemptions - self.num_swap_preemptions
        return stats


class StepOutput(NamedTuple):
    deltas: list[RequestDelta]
    # (request id, message) of adds the scheduler refused (e.g. a prompt larger than the whole pool).
    rejected: list[tuple[str, str]]
    stats: CoreStats
    # Adds applied so far (all time): the API process counts the adds still in flight from it.
    num_adds_applied: int
