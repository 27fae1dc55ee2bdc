"""One served request in the API process: the deltas the engine core sent, reassembled into outputs.

NOTE: deltas are applied as they arrive, but a consumer is handed one cumulative ``RequestOutput``
per read, built from everything received so far: a slow consumer (a stalled SSE client) gets the
merged growth of many steps in one output, and the server never buffers one message per step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from pagedllm.engine.core_messages import RequestDelta
from pagedllm.outputs import CompletionOutput, RequestOutput, SampleLogprobs
from pagedllm.sampling_params import SamplingParams


@dataclass(slots=True)
class RequestTimes:
    """One request's life as the API process saw it (``time.monotonic`` seconds)."""

    request_id: str
    arrival: float
    num_prompt_tokens: int
    first_token: float | None = None
    finished: float | None = None
    num_generation_tokens: int = 0  # summed over the request's n sequences
    max_sequence_tokens: int = 0  # the longest sequence: what a client waits for
    finish_reason: str | None = None


@dataclass(slots=True)
class SequenceState:
    """One of the request's ``n`` completions, as far as the deltas went."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    logprobs: SampleLogprobs | None = None
    cumulative_logprob: float | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None

    def to_completion(self) -> CompletionOutput:
        # Copies of the lists: the consumer may hold this output while later deltas arrive.
        return CompletionOutput(
            index=self.index,
            text=self.text,
            token_ids=list(self.token_ids),
            cumulative_logprob=self.cumulative_logprob,
            logprobs=list(self.logprobs) if self.logprobs is not None else None,
            finish_reason=self.finish_reason,
            stop_reason=self.stop_reason,
        )


class RequestStream:
    """Async iterator of a request's cumulative ``RequestOutput``s; closing it early aborts the request."""

    def __init__(
        self,
        request_id: str,
        prompt: str | None,
        prompt_token_ids: list[int],
        params: SamplingParams,
        times: RequestTimes,
        on_abort: Callable[[str], None],
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.params = params
        self.times = times
        self._on_abort = on_abort
        self._sequences = [
            SequenceState(i, logprobs=[] if params.logprobs is not None else None) for i in range(params.n)
        ]
        self._num_cached_tokens = 0
        self._is_request_finished = False
        self._has_news = False  # deltas arrived since the consumer's last read
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.finished = False  # the consumer has had the final output (or the error)

    # -- the engine's side -------------------------------------------------------------------------

    def apply(self, delta: RequestDelta, now: float) -> None:
        _, sequences, is_finished, num_cached_tokens = delta
        for index, new_token_ids, new_text, new_logprobs, cumulative, finish_reason, stop_reason in sequences:
            seq = self._sequences[index]
            if new_token_ids:
                seq.token_ids += new_token_ids
            if new_text:
                seq.text += new_text
            if new_logprobs and seq.logprobs is not None:
                seq.logprobs += new_logprobs
            seq.cumulative_logprob = cumulative
            seq.finish_reason = finish_reason
            seq.stop_reason = stop_reason
        self._num_cached_tokens = num_cached_tokens
        self._is_request_finished = is_finished
        times = self.times
        num_tokens = [len(seq.token_ids) for seq in self._sequences]
        if times.first_token is None and any(num_tokens):
            times.first_token = now
        times.num_generation_tokens = sum(num_tokens)
        times.max_sequence_tokens = max(num_tokens, default=0)
        self._has_news = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (raised to the consumer at its next read)."""
        if self._error is None:
            self._error = error
        self._wake()

    def finish_reason(self) -> str:
        reasons = {seq.finish_reason for seq in self._sequences}
        return "length" if "length" in reasons else (reasons.pop() or "stop")

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- the consumer's side -----------------------------------------------------------------------

    def output(self) -> RequestOutput:
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=self.prompt_token_ids,  # never changes: shared, not copied
            outputs=[seq.to_completion() for seq in self._sequences],
            finished=self._is_request_finished,
            num_cached_tokens=self._num_cached_tokens,
        )

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> RequestOutput:
        if self.finished:
            raise StopAsyncIteration
        while not self._has_news and self._error is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:  # an error wins over output not yet read, as it did before
            self.finished = True
            raise self._error
        self._has_news = False
        output = self.output()
        if output.finished:
            self.finished = True
        return output

    def abort(self) -> None:
        """Stop the request (a no-op once it finished); its blocks are freed before the next step."""
        if not self.finished:
            self.finished = True
            self._on_abort(self.request_id)

    async def aclose(self) -> None:
        self.abort()
