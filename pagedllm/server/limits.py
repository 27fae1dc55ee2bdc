"""Per-request limits a server operator sets (``--max-n``, ``--max-tokens-limit``, ...): a request over
one is refused with a 400 naming the limit and its flag, before it costs the engine anything."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from http import HTTPStatus

from pagedllm.sampling_params import SamplingParams
from pagedllm.server.errors import APIError


@dataclass(slots=True, frozen=True)
class RequestLimits:
    max_n: int = 16  # branches (n) of one request
    max_tokens: int | None = None  # output tokens a request may ask for; None: up to max_model_len
    max_prompt_tokens: int | None = None  # None: max_model_len - 1
    max_stop_strings: int = 16
    max_stop_string_chars: int = 256
    max_prompts: int = 64  # prompts in one /v1/completions request
    max_body_bytes: int = 8 << 20  # request body (checked from Content-Length; 413 above it)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in ("max_tokens", "max_prompt_tokens"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field.name} must be an integer >= 1, got {value!r}")

    def apply(
        self, params: SamplingParams, num_prompts: int = 1, max_tokens_set: bool = True
    ) -> SamplingParams:
        """``params`` within the limits, or a 400. A request that did not set max_tokens (None, or an
        endpoint's default: ``max_tokens_set=False``) is capped to the limit rather than refused."""
        if params.n > self.max_n:
            raise _over(f"n={params.n} is more than this server allows ({self.max_n})", "n", "--max-n")
        if num_prompts > self.max_prompts:
            raise _over(
                f"{num_prompts} prompts in one request; this server allows {self.max_prompts}",
                "prompt",
                "--max-prompts-per-request",
            )
        stops = [params.stop] if isinstance(params.stop, str) else list(params.stop or ())
        if len(stops) > self.max_stop_strings:
            raise _over(
                f"{len(stops)} stop strings; this server allows {self.max_stop_strings}",
                "stop",
                "--max-stop-strings",
            )
        longest = max((len(s) for s in stops), default=0)
        if longest > self.max_stop_string_chars:
            raise _over(
                f"a stop string of {longest} characters; this server allows {self.max_stop_string_chars}",
                "stop",
                "--max-stop-string-length",
            )
        if self.max_tokens is None:
            return params
        if params.min_tokens > self.max_tokens:
            raise _over(
                f"min_tokens={params.min_tokens} is more than this server allows for max_tokens "
                f"({self.max_tokens})",
                "min_tokens",
                "--max-tokens-limit",
            )
        if params.max_tokens is None or (not max_tokens_set and params.max_tokens > self.max_tokens):
            # NOTE: replace() validates again; min_tokens <= the cap was checked just above.
            return dataclasses.replace(params, max_tokens=self.max_tokens)
        if params.max_tokens > self.max_tokens:
            raise _over(
                f"max_tokens={params.max_tokens} is more than this server allows ({self.max_tokens})",
                "max_tokens",
                "--max-tokens-limit",
            )
        return params


def _over(message: str, param: str, flag: str) -> APIError:
    return APIError(
        HTTPStatus.BAD_REQUEST, f"{message} (the server's {flag})", param=param, code="limit_exceeded"
    )
