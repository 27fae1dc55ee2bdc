"""The bearer-token check, as plain ASGI middleware.

NOTE: not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` pipes every response body
through an extra in-memory stream, which for hundreds of SSE streams costs more CPU than the engine.
"""

from __future__ import annotations

import secrets
from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from pagedllm.server.errors import error_response


class APIKeyMiddleware:
    """As vLLM: only the ``/v1`` API needs the key; /health and /metrics stay open to probes and
    scrapers."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1") and not self._authorized(scope):
            response = error_response(
                HTTPStatus.UNAUTHORIZED,
                "invalid or missing API key: send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), self.api_key)
