"""Per-request limits a server operator sets (``--max-n``, ``--max-tokens-limit``, ...): a request over
one is refused with a 400 naming the limit and its flag, before it costs the engine anything."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pagedllm.sampling_params import SamplingParams
from pagedllm.server.errors import APIError, error_response

if TYPE_CHECKING:
    from pagedllm.server.state import ServerState  # NOTE: state.py imports this module


@dataclass(slots=True, frozen=True)
class RequestLimits:
    max_n: int = 16  # branches (n) of one request
    max_tokens: int | None = None  # output tokens a request may ask for; None: up to max_model_len
    max_prompt_tokens: int | None = None  # None: max_model_len - 1
    max_stop_strings: int = 16
    max_stop_string_chars: int = 256
    max_prompts: int = 64  # prompts in one /v1/completions request
    max_body_bytes: int = 8 << 20  # request body (413 above it, chunked bodies counted too)

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


class AdmissionMiddleware:
    """Before any route: a draining server answers /v1 with 503 (``server_shutting_down``), and a body
    over ``max_body_bytes`` is a 413 (by its Content-Length, or counted as it arrives when chunked).

    NOTE: plain ASGI, not ``@app.middleware("http")`` (see ``server/auth.py``: BaseHTTPMiddleware pipes
    every SSE chunk through an extra stream).
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = self._refusal(scope)
            if response is None and not any(k == b"content-length" for k, _ in scope["headers"]):
                # A chunked body names no length up front: count it as it arrives.
                response, receive = await self._read_unsized_body(receive)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _read_unsized_body(self, receive: Receive) -> tuple[JSONResponse | None, Receive]:
        """Read a body sent without Content-Length up to the limit: a 413 past it (nothing more is
        read), else a ``receive`` that hands the app the same body again."""
        limit = self.state.limits.max_body_bytes
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            size += len(message.get("body", b""))
            if size > limit:
                return _body_too_large(f"over {limit}", limit), receive
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return None, replay

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        if self.state.draining and scope["path"].startswith("/v1"):
            return error_response(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "the server is shutting down and takes no new requests",
                code="server_shutting_down",
            )
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        limit = self.state.limits.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _body_too_large(length.decode("latin-1"), limit)
        return None


def _body_too_large(size: str, limit: int) -> JSONResponse:
    return error_response(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"the request body ({size} bytes) is over this server's limit of {limit} bytes "
        "(--max-request-body-bytes)",
        code="body_too_large",
    )
