"""``POST /v1/completions``: one engine request per prompt, answered whole or as Server-Sent Events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from pagedllm.engine.async_engine import RequestStream
from pagedllm.outputs import CompletionOutput, Logprob
from pagedllm.server.errors import APIError, bad_request, error_body, from_engine_error
from pagedllm.server.protocol import CompletionRequest
from pagedllm.server.state import (
    OFF_LOOP_PROMPT_CHARS,
    ServerState,
    encode_off_loop,
    final_outputs,
    merge_streams,
    usage,
)

SSE_DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def completion_logprobs(entries: Sequence[dict[int, Logprob]], text_offset: int) -> dict[str, Any]:
    """OpenAI's legacy completions shape: parallel lists per token; the sampled token comes first."""
    tokens, token_logprobs, top, offsets = [], [], [], []
    for entry in entries:
        sampled = next(iter(entry.values()))
        token = sampled.decoded_token or ""
        tokens.append(token)
        token_logprobs.append(sampled.logprob)
        top.append({(lp.decoded_token or ""): lp.logprob for lp in entry.values()})
        offsets.append(text_offset)
        text_offset += len(token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


def _choice(
    index: int, completion: CompletionOutput, text: str, logprobs: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "index": index,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": completion.finish_reason,
        "stop_reason": completion.stop_reason,
    }


async def create_completion(body: CompletionRequest, state: ServerState) -> JSONResponse | StreamingResponse:
    state.check_model(body.model)
    refused = body.unsupported_field()
    if refused is not None:
        raise APIError(HTTPStatus.BAD_REQUEST, refused[1], param=refused[0])
    try:
        params = body.to_sampling_params()
        prompts = body.prompts()
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, str) and len(prompt) >= OFF_LOOP_PROMPT_CHARS:
                prompts[i] = await encode_off_loop(state.tokenizer, prompt)
    except ValueError as e:
        raise bad_request(e) from e
    response_id = f"cmpl-{uuid.uuid4().hex}"
    streams = state.start_requests(response_id, prompts, params, "max_tokens" in body.model_fields_set)
    header = {"id": response_id, "created": int(time.time()), "model": state.model_name}
    if body.stream:
        return StreamingResponse(
            _stream(streams, header, body.n, body.include_usage, state.engine.tokenizer is None),
            media_type="text/event-stream",
        )
    finals = await final_outputs(streams)
    token_ids_only = state.engine.tokenizer is None
    choices = []
    for i, final in enumerate(finals):
        for completion in final.outputs:
            logprobs = (
                completion_logprobs(completion.logprobs, 0) if completion.logprobs is not None else None
            )
            choice = _choice(i * body.n + completion.index, completion, completion.text, logprobs)
            if token_ids_only:  # no text to show: the ids, as the streamed chunks carry them
                choice["token_ids"] = list(completion.token_ids)
            choices.append(choice)
    return JSONResponse({**header, "object": "text_completion", "choices": choices, "usage": usage(finals)})


async def _stream(
    streams: list[RequestStream], header: dict[str, Any], n: int, include_usage: bool, token_ids_only: bool
) -> AsyncIterator[str]:
    """SSE chunks. ``token_ids_only``: a model without a tokenizer (dummy weights) has no text to send,
    so each chunk carries its new tokens' ids in a ``token_ids`` field (an extension, as vLLM's)."""
    chunk_header = {**header, "object": "text_completion"}
    sent_chars: dict[tuple[int, int], int] = {}
    sent_tokens: dict[tuple[int, int], int] = {}
    done: set[tuple[int, int]] = set()
    finals = {}
    try:
        async for i, output in merge_streams(streams):
            for completion in output.outputs:
                key = (i, completion.index)
                if key in done:
                    continue
                start = sent_chars.get(key, 0)
                delta = completion.text[start:]
                first_token = sent_tokens.get(key, 0)
                new_tokens = completion.token_ids[first_token:] if token_ids_only else []
                if not delta and not new_tokens and completion.finish_reason is None:
                    continue  # held back (a partial character or a possible stop string)
                logprobs = None
                if completion.logprobs is not None:
                    logprobs = completion_logprobs(
                        completion.logprobs[first_token : len(completion.token_ids)], start
                    )
                sent_chars[key] = len(completion.text)
                sent_tokens[key] = len(completion.token_ids)
                if completion.finish_reason is not None:
                    done.add(key)
                choice = _choice(i * n + completion.index, completion, delta, logprobs)
                if token_ids_only:
                    choice["token_ids"] = new_tokens
                yield sse({**chunk_header, "choices": [choice]})
            if output.finished:
                finals[i] = output
        if include_usage:
            yield sse({**chunk_header, "choices": [], "usage": usage([finals[i] for i in sorted(finals)])})
    except Exception as e:
        # Headers are sent: the error travels as an event, as OpenAI's and vLLM's servers do.
        err = e if isinstance(e, APIError) else from_engine_error(e)
        yield sse(error_body(err.status, err.message, err.param, err.code))
    finally:
        for stream in streams:
            stream.abort()  # a no-op once finished; frees the blocks when the client went away
    yield SSE_DONE
