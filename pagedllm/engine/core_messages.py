"""What the server's two processes say to each other (pickled over ``multiprocessing`` pipes).

API process -> engine core: one ``list[Command]`` per event-loop tick (adds and aborts batched).
Engine core -> API process: ``CoreReady`` (or ``CoreFailed``) once, then one ``StepOutput`` per step:
what each request gained in that step (deltas, never cumulative copies), plus the engine's counters.

NOTE: a delta is a plain tuple (its fields below, by position), not a NamedTuple or a dataclass: a
step's ~256 of them pickle in ~70 us as tuples and ~600 us as NamedTuples (each of those costs a
Python-level reduce), and the core pays for every microsecond. Unpack them by position.
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


# What one of a request's ``n`` sequences gained in one step:
# (index, new_token_ids, new_text, new_logprobs, cumulative_logprob, finish_reason, stop_reason).
# new_text is "" without a tokenizer or while text is held back (a partial character, a possible stop
# string); new_logprobs has one entry per new token when the request asked for logprobs, else None.
SequenceDelta = tuple[int, list[int], str, SampleLogprobs | None, float | None, str | None, int | str | None]

# What a request gained in one step: (request_id, sequence deltas, finished, num_cached_tokens).
RequestDelta = tuple[str, list[SequenceDelta], bool, int]


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
    num_steps_scheduled_ahead: int  # async scheduling: steps launched before the previous one's tokens
    # The core's own time (filled by its loop): where a slow server's time goes, core or HTTP side.
    num_steps: int = 0
    step_seconds: float = 0.0  # inside LLMEngine.step
    overhead_seconds: float = 0.0  # applying commands, pickling and sending outputs

    def as_dict(self) -> dict[str, float]:
        stats: dict[str, float] = self._asdict()
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
