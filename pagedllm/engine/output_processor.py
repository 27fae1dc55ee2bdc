"""Output state: per sequence (detokenization, stop strings, logprobs) and per request (its ``n``
sequences gathered into one ``RequestOutput``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pagedllm.core.request import Request, RequestStatus
from pagedllm.engine.core_messages import RequestDelta, SequenceDelta
from pagedllm.outputs import CompletionOutput, Logprob, RequestOutput
from pagedllm.sampling_params import SamplingParams
from pagedllm.tokenizer.detokenizer import IncrementalDetokenizer
from pagedllm.tokenizer.tokenizer import Tokenizer


@dataclass(slots=True)
class SequenceTracker:
    """Everything the engine adds to one core ``Request`` (one sequence) on its way to the user."""

    request: Request
    params: SamplingParams
    detokenizer: IncrementalDetokenizer | None
    index: int = 0  # which of the request's n completions
    text: str = ""
    logprobs: list[dict[int, Logprob]] | None = None
    cumulative_logprob: float | None = None
    # Set when a stop string ends the request: text is already cut, the scheduler is told by the engine.
    stop_string: str | None = None
    # Whether every token must be seen as it comes (logprobs are only given with their step, a stop
    # string must end the request at once); otherwise text can wait until someone reads it.
    needs_every_token: bool = field(default=False)
    _stop_strings: list[str] = field(default_factory=list)  # params.stop, normalized to a list
    _max_stop_len: int = field(default=0)
    _num_detokenized: int = field(default=0)  # output tokens already fed to the detokenizer
    # What ``take_delta`` has reported so far (the server's engine core sends deltas, not copies).
    _num_sent_tokens: int = field(default=0)
    _num_sent_chars: int = field(default=0)

    def __post_init__(self) -> None:
        stop = self.params.stop
        assert isinstance(stop, list)  # SamplingParams.__post_init__ normalizes it
        self._stop_strings = stop
        self._max_stop_len = max((len(s) for s in self._stop_strings), default=0)
        if self.params.logprobs is not None:
            self.logprobs = []
            self.cumulative_logprob = 0.0
        self.needs_every_token = self.logprobs is not None or self._max_stop_len > 0

    def on_token(self, logprobs: list[tuple[int, float, int]] | None, tokenizer: Tokenizer | None) -> None:
        """Account the newest output token: text, stop strings, logprobs.

        NOTE: the engine skips this for a sequence nobody watches token by token (not streamed, no stop
        strings, no logprobs): its text is detokenized when it finishes, from the same ids in the same
        order through the same incremental detokenizer, so the text is identical.
        """
        if logprobs is not None and self.logprobs is not None:
            entry: dict[int, Logprob] = {}
            for tid, logprob, rank in logprobs:
                decoded = tokenizer.decode([tid], skip_special_tokens=False) if tokenizer else None
                entry.setdefault(tid, Logprob(logprob=logprob, rank=rank, decoded_token=decoded))
            self.logprobs.append(entry)
            assert self.cumulative_logprob is not None
            self.cumulative_logprob += logprobs[0][1]
        self._detokenize_new_tokens()

    def _detokenize_new_tokens(self) -> None:
        if self.detokenizer is None or self.stop_string is not None:
            return
        output_token_ids = self.request.output_token_ids
        if self._num_detokenized == len(output_token_ids):
            return
        new_token_ids = output_token_ids[self._num_detokenized :]
        self._num_detokenized = len(output_token_ids)
        stopped = self.request.status == RequestStatus.FINISHED_STOPPED
        if stopped and not self.params.include_stop_str_in_output:
            # Ended by EOS or a stop token id (a stop string returned above): its text is not output,
            # as vLLM does; the id stays in token_ids.
            new_token_ids = new_token_ids[:-1]
        self._add_text(self.detokenizer.append(new_token_ids))

    def on_finish(self) -> None:
        """The request ended: detokenize what was deferred, then release text held back for an
        incomplete character."""
        self._detokenize_new_tokens()
        if self.detokenizer is not None and self.stop_string is None:
            self._add_text(self.detokenizer.flush())

    def _add_text(self, delta: str) -> None:
        if not delta:
            return
        previous_len = len(self.text)
        self.text += delta
        # Like a stop token, a stop string ends nothing before min_tokens (vLLM's rule): one that ends
        # in the text of those tokens is never found later either.
        if self._max_stop_len and len(self.request.output_token_ids) >= self.request.stop.min_tokens:
            self._check_stop_strings(previous_len)

    def _check_stop_strings(self, previous_len: int) -> None:
        # Only a stop string that ends inside the new text can be new.
        window_start = max(0, previous_len - self._max_stop_len + 1)
        best: tuple[int, str] | None = None
        for stop in self._stop_strings:
            index = self.text.find(stop, window_start)
            if index != -1 and (best is None or index < best[0]):
                best = (index, stop)
        if best is not None:
            index, stop = best
            self.stop_string = stop
            cut = index + len(stop) if self.params.include_stop_str_in_output else index
            self.text = self.text[:cut]

    def visible_text(self) -> str:
        """Text safe to show while streaming: a possible stop-string prefix at the end is held back."""
        if self.request.is_finished or not self._max_stop_len:
            return self.text
        return self.text[: max(0, len(self.text) - self._max_stop_len + 1)]

    def finish_reason(self) -> str | None:
        """The request's, except that a stop string found in its last tokens' text (by the step that also
        reached ``max_tokens`` or the context, or in the text flushed at its end) makes it "stop", as
        vLLM reports it: the text was cut there."""
        status = self.request.status
        if self.stop_string is not None and status == RequestStatus.FINISHED_LENGTH:
            return RequestStatus.FINISHED_STOPPED.finish_reason
        return status.finish_reason

    def take_delta(self) -> SequenceDelta:
        """Tokens, text and logprobs added since the last call (``to_completion``'s growth)."""
        request = self.request
        text = self.visible_text()
        new_text = text[self._num_sent_chars :]
        self._num_sent_chars = len(text)
        start = self._num_sent_tokens
        new_token_ids = request.output_token_ids[start:]
        self._num_sent_tokens = len(request.output_token_ids)
        return (
            self.index,
            new_token_ids,
            new_text,
            self.logprobs[start:] if self.logprobs is not None else None,
            self.cumulative_logprob,
            self.finish_reason(),
            self.stop_string if self.stop_string is not None else request.stop_reason,
        )

    def to_completion(self) -> CompletionOutput:
        request = self.request
        return CompletionOutput(
            index=self.index,
            text=self.visible_text(),
            token_ids=list(request.output_token_ids),
            cumulative_logprob=self.cumulative_logprob,
            logprobs=self.logprobs,
            finish_reason=self.finish_reason(),
            stop_reason=self.stop_string if self.stop_string is not None else request.stop_reason,
        )


@dataclass(slots=True)
class RequestTracker:
    """One user request: its prompt and its ``n`` sequences (the first one is the parent)."""

    request_id: str
    prompt: str | None
    sequences: list[SequenceTracker]
    # False: ``step()`` reports the request only when it finishes (``LLM.generate`` wants nothing else),
    # which spares building a ``RequestOutput`` per request per step.
    stream_outputs: bool = True

    @property
    def parent(self) -> Request:
        return self.sequences[0].request

    @property
    def is_finished(self) -> bool:
        return all(seq.request.is_finished for seq in self.sequences)

    def to_output(self) -> RequestOutput:
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=list(self.parent.prompt_token_ids),
            outputs=[seq.to_completion() for seq in self.sequences],
            finished=self.is_finished,
            num_cached_tokens=self.parent.num_cached_tokens,
        )

    def take_delta(self) -> RequestDelta:
        sequences = [seq.take_delta() for seq in self.sequences]
        return (self.request_id, sequences, self.is_finished, self.parent.num_cached_tokens)
