"""What a request hands back to the user: vLLM's ``RequestOutput`` / ``CompletionOutput`` / ``Logprob``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Logprob:
    """Log-probability of one token; ``rank`` is 1 for the most likely token of the vocabulary."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


# One dict per generated token: token id -> its Logprob (the sampled token plus the top-k ones).
SampleLogprobs = list[dict[int, Logprob]]


@dataclass(slots=True)
class CompletionOutput:
    """One of the ``n`` completions of a request, as far as it has been generated."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: SampleLogprobs | None
    # "stop" (EOS, a stop token or a stop string), "length" (max_tokens / max_model_len) or "abort".
    finish_reason: str | None = None
    # The stop token id or stop string that ended it; None for EOS, length or still running.
    stop_reason: int | str | None = None

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass(slots=True)
class RequestOutput:
    """A request's prompt and its completions; streamed repeatedly until ``finished``."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    # Prompt tokens whose K/V came from the prefix cache instead of being computed.
    num_cached_tokens: int = 0
    # Timing of the request; the engine fills it in (opaque here so outputs depend on nothing).
    metrics: object | None = None
