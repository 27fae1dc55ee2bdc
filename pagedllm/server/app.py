"""The FastAPI application: routes, the bearer-token check, and the engine core's lifetime."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response

from pagedllm.engine.async_engine import AsyncEngine
from pagedllm.server.auth import APIKeyMiddleware
from pagedllm.server.chat import chat_prompt_ids, create_chat_completion
from pagedllm.server.completions import create_completion
from pagedllm.server.disconnect import unless_disconnected
from pagedllm.server.errors import APIError, error_response, install_error_handlers
from pagedllm.server.limits import AdmissionMiddleware, RequestLimits
from pagedllm.server.metrics import CONTENT_TYPE_LATEST, ServerMetrics
from pagedllm.server.openapi import install_openapi
from pagedllm.server.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    TokenizeRequest,
)
from pagedllm.server.state import ServerState, encode_off_loop


def build_app(
    engine: AsyncEngine,
    model_name: str,
    api_key: str | None = None,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """An app serving ``engine`` under ``model_name``; the engine core serves while the app is up."""
    state = ServerState(
        engine=engine,
        model_name=model_name,
        metrics=ServerMetrics(model_name),
        api_key=api_key,
        limits=limits or RequestLimits(),
    )
    engine.add_listener(state.metrics.on_request_finished)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        # NOTE: what exists now (the framework, the tokenizer, the app) lives as long as the server;
        # out of the collector's generations, a full collection stops walking ~200k objects (~90 ms
        # with the event loop stopped: a burst of requests stalls).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await engine.shutdown()
            gc.unfreeze()  # an app built in a longer-lived process (tests) leaves it as it found it

    app = FastAPI(title="pagedllm", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = state
    install_error_handlers(app)
    install_openapi(app)

    if api_key is not None:
        app.add_middleware(APIKeyMiddleware, api_key=api_key)

    # Added last, so it runs first: a draining server refuses before the key is even checked.
    app.add_middleware(AdmissionMiddleware, state=state)

    @app.get("/health")
    async def health() -> Response:
        if state.draining:
            return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "the server is shutting down")
        if not engine.is_running:
            reason = engine.dead_reason or "the engine core process is not running"
            return error_response(HTTPStatus.SERVICE_UNAVAILABLE, reason, code="engine_dead")
        return Response(status_code=HTTPStatus.OK)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(await state.metrics.render(engine), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {
            "id": model_name,
            "object": "model",
            "created": created,
            "owned_by": "pagedllm",
            "root": model_name,
            "max_model_len": state.max_model_len,
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await unless_disconnected(request, create_completion(body, state))

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        return await unless_disconnected(request, create_chat_completion(body, state))

    @app.post("/tokenize")
    async def tokenize(body: TokenizeRequest) -> dict[str, Any]:
        state.check_model(body.model)
        if (body.prompt is None) == (body.messages is None):
            raise APIError(HTTPStatus.BAD_REQUEST, "give exactly one of 'prompt' or 'messages'")
        if body.messages is not None:
            tokens = await chat_prompt_ids(state, body.messages, body.add_generation_prompt)
        else:
            assert body.prompt is not None
            try:
                tokens = await encode_off_loop(state.tokenizer, body.prompt, body.add_special_tokens)
            except ValueError as e:
                raise APIError(HTTPStatus.BAD_REQUEST, str(e), param="prompt") from e
        return {"count": len(tokens), "max_model_len": state.max_model_len, "tokens": tokens}

    @app.post("/detokenize")
    async def detokenize(body: DetokenizeRequest) -> dict[str, Any]:
        state.check_model(body.model)
        vocab = engine.vocab_size
        bad = [t for t in body.tokens if not 0 <= t < vocab]
        if bad:
            raise APIError(
                HTTPStatus.BAD_REQUEST, f"tokens must be in [0, {vocab}); got {bad[:5]}", param="tokens"
            )
        return {"prompt": state.tokenizer.decode(body.tokens, skip_special_tokens=False)}

    return app
