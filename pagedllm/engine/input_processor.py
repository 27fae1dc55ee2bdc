"""Request validation and tokenization: everything that can refuse a request before it is queued.

Shared by ``LLMEngine.make_request`` and the server's API process, which validates without the model
(it learns ``vocab_size`` and ``max_model_len`` from the engine core), so a bad request gets the same
message, at once, on either side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pagedllm.sampling_params import SamplingParams
from pagedllm.tokenizer.tokenizer import Tokenizer

PromptInput = str | Sequence[int]


class MaxTokensTooLargeError(ValueError):
    """A request's ``max_tokens`` does not fit after its prompt under ``max_model_len``. Raised only where
    the caller asks for it (the HTTP server, as OpenAI's and vLLM's do); offline, such a request runs
    until the context is full and finishes with ``length``."""


@dataclass(slots=True)
class InputProcessor:
    tokenizer: Tokenizer | None
    vocab_size: int
    max_model_len: int
    max_num_seqs: int
    kv_policy: str

    def check_params(self, params: SamplingParams, cache_salt: str | None = None) -> None:
        if not isinstance(params, SamplingParams):
            raise TypeError(f"sampling params must be SamplingParams, got {type(params).__name__}")
        self.check_sharing_options("n", params.n, cache_salt)
        if params.stop and self.tokenizer is None:
            # vLLM refuses them likewise: without text there is nothing to find them in.
            raise ValueError(
                f"stop={params.stop!r}: stop strings need a tokenizer, and this model has none "
                "(use stop_token_ids)"
            )
        if params.logprobs is not None and params.logprobs > self.vocab_size:
            raise ValueError(
                f"logprobs={params.logprobs} is more than the vocabulary's {self.vocab_size} tokens"
            )

    def check_sharing_options(self, width_name: str, width: int, cache_salt: str | None) -> None:
        """``n`` or ``beam_width``: branches that share blocks, all of them in the running batch."""
        if width > self.max_num_seqs:
            raise ValueError(
                f"{width_name}={width} is more than max_num_seqs={self.max_num_seqs}: the branches of one "
                "request run in one batch"
            )
        if width > 1 and self.kv_policy == "contiguous":
            raise ValueError(
                f"{width_name}={width} needs kv_policy='paged': the branches share blocks, and the "
                "contiguous policy gives every sequence a private max_model_len reservation"
            )
        if cache_salt is not None and (not isinstance(cache_salt, str) or not cache_salt):
            raise ValueError(f"cache_salt must be a non-empty string or None, got {cache_salt!r}")

    def room_after(self, prompt_ids: list[int]) -> int:
        """Output tokens that fit after the prompt under ``max_model_len``; raises if none does."""
        if len(prompt_ids) >= self.max_model_len:
            raise ValueError(
                f"prompt has {len(prompt_ids)} tokens, but max_model_len is {self.max_model_len} "
                "(the prompt plus at least one output token must fit)"
            )
        return self.max_model_len - len(prompt_ids)

    def check_max_tokens_fit(self, prompt_ids: list[int], params: SamplingParams) -> None:
        """Raises ``MaxTokensTooLargeError`` where ``params.max_tokens`` is more than the room after the
        prompt (``room_after``)."""
        room = self.room_after(prompt_ids)
        if params.max_tokens is not None and params.max_tokens > room:
            raise MaxTokensTooLargeError(
                f"max_tokens={params.max_tokens} is too large: the model's context is {self.max_model_len} "
                f"tokens (max_model_len) and the prompt has {len(prompt_ids)}, which leaves room for {room}"
            )

    def tokenize(self, prompt: PromptInput) -> tuple[str | None, list[int]]:
        """(the prompt's text or None, its token ids); raises ``ValueError`` naming the problem."""
        if isinstance(prompt, str):
            if not prompt:
                raise ValueError("prompt is empty")
            if self.tokenizer is None:
                raise ValueError("this model has no tokenizer: pass the prompt as a list of token ids")
            ids = self.tokenizer.encode(prompt)
            if not ids:
                raise ValueError(f"prompt {prompt[:40]!r} encodes to no tokens")
            if max(ids) >= self.vocab_size:  # a tokenizer of more tokens than the model's embedding
                raise ValueError(
                    f"prompt {prompt[:40]!r} encodes to token id {max(ids)}, past the model's vocabulary of "
                    f"{self.vocab_size} (the tokenizer has tokens the model does not)"
                )
            return prompt, ids
        ids = list(prompt)
        if not ids:
            raise ValueError("prompt token ids are empty")
        vocab = self.vocab_size
        bad = [t for t in ids if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab]
        if bad:
            raise ValueError(f"prompt token ids must be integers in [0, {vocab}); got {bad[:5]!r}")
        return None, ids

    def process(self, prompt: PromptInput, params: SamplingParams) -> tuple[str | None, list[int]]:
        """Every check ``LLMEngine.make_request`` makes, without building the request."""
        self.check_params(params)
        prompt_text, prompt_ids = self.tokenize(prompt)
        self.room_after(prompt_ids)
        return prompt_text, prompt_ids
