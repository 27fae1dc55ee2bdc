"""Request bodies of the OpenAI API (and vLLM's extra sampling fields), and their ``SamplingParams``.

Pydantic checks the shape (types); ``SamplingParams`` checks the values, so the ranges and their
messages are the offline API's. Fields OpenAI has and pagedllm does not implement are refused by name
(``UNSUPPORTED``) rather than silently ignored; unknown fields are ignored, as OpenAI's server does.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

from pagedllm.sampling_params import SamplingParams
from pagedllm.tokenizer.chat_template import text_content

# Completions: OpenAI's default max_tokens. Chat: None (until the context ends), as vLLM.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16

# name -> why it is refused (checked only when the field is set to something other than its no-op value).
UNSUPPORTED = {
    "tools": "tool calling is not supported",
    "tool_choice": "tool calling is not supported",
    "functions": "function calling is not supported",
    "function_call": "function calling is not supported",
    "response_format": "structured output (response_format) is not supported",
    "logit_bias": "logit_bias is not supported",
    "suffix": "suffix (insertion) is not supported",
    "echo": "echo is not supported",
    "audio": "audio output is not supported",
}

# Values of those fields that ask for what pagedllm does anyway: OpenAI's defaults, sent by some clients.
NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "response_format": ({"type": "text"},),
    "tool_choice": ("none",),
}


# Numbers and flags as JSON has them, as OpenAI's API takes them: pydantic's lax mode would read
# ``"max_tokens": true`` as 1, ``"n": "2"`` as 2 and ``"stream": "yes"`` as true. A float field takes
# JSON integers (``"temperature": 1``).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]


class StreamOptions(BaseModel):
    include_usage: Bool = False


class _SamplingFields(BaseModel):
    """Fields shared by both endpoints. ``None`` means "the default"."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    n: Int = 1
    temperature: Float | None = None
    top_p: Float | None = None
    top_k: Int | None = None
    min_p: Float | None = None
    seed: Int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[Int] | None = None
    presence_penalty: Float | None = None
    frequency_penalty: Float | None = None
    repetition_penalty: Float | None = None
    min_tokens: Int = 0
    ignore_eos: Bool = False
    skip_special_tokens: Bool = True
    include_stop_str_in_output: Bool = False
    stream: Bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    def unsupported_field(self) -> tuple[str, str] | None:
        """(field, reason) of the first set field that pagedllm refuses, or None."""
        extra = self.model_extra or {}
        for name, reason in UNSUPPORTED.items():
            value = getattr(self, name, None) if name in type(self).model_fields else extra.get(name)
            if value not in (None, False, {}, [], "") and value not in NO_OP_VALUES.get(name, ()):
                return name, reason
        return None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def _sampling_params(self, max_tokens: int | None, logprobs: int | None) -> SamplingParams:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream=true")  # OpenAI's and vLLM's rule
        values: dict[str, Any] = {
            "n": self.n,
            "max_tokens": max_tokens,
            "min_tokens": self.min_tokens,
            "seed": self.seed,
            "stop": self.stop,
            "stop_token_ids": self.stop_token_ids,
            "ignore_eos": self.ignore_eos,
            "logprobs": logprobs,
            "skip_special_tokens": self.skip_special_tokens,
            "include_stop_str_in_output": self.include_stop_str_in_output,
        }
        for name in (
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "presence_penalty",
            "frequency_penalty",
            "repetition_penalty",
        ):
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        return SamplingParams(**values)  # raises ValueError naming the bad value


class CompletionRequest(_SamplingFields):
    # A string, a list of strings, token ids, or a list of token-id lists (one request per prompt).
    prompt: str | list[str] | list[Int] | list[list[Int]]
    max_tokens: Int | None = COMPLETIONS_DEFAULT_MAX_TOKENS
    logprobs: Int | None = None
    best_of: Int | None = None
    echo: Bool = False
    suffix: str | None = None
    logit_bias: dict[str, float] | None = None

    def prompts(self) -> list[str | list[int]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            raise ValueError("prompt is empty")
        if all(isinstance(p, int) for p in prompt):
            return [list(prompt)]  # type: ignore[arg-type]
        return list(prompt)  # type: ignore[arg-type]

    def to_sampling_params(self) -> SamplingParams:
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError(f"best_of={self.best_of} is not supported (only best_of == n={self.n})")
        return self._sampling_params(self.max_tokens, self.logprobs)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    # A string, or OpenAI's list of content parts (only text parts are supported).
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def to_template_message(self) -> dict[str, Any]:
        content = text_content(self.content)
        message: dict[str, Any] = {"role": self.role, "content": content}
        if self.name is not None:
            message["name"] = self.name
        return message


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: Int | None = None
    max_completion_tokens: Int | None = None
    logprobs: Bool = False
    top_logprobs: Int | None = None
    add_generation_prompt: Bool = True
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None

    def to_sampling_params(self) -> SamplingParams:
        max_tokens = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=true")
        logprobs = (self.top_logprobs or 0) if self.logprobs else None
        return self._sampling_params(max_tokens, logprobs)


class TokenizeRequest(BaseModel):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: Bool = True
    add_generation_prompt: Bool = True


class DetokenizeRequest(BaseModel):
    model: str | None = None
    tokens: list[Int]
