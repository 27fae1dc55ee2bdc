"""``POST /v1/chat/completions``: the model's chat template, then one engine request with ``n`` branches."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from pagedllm.engine.async_engine import RequestStream
from pagedllm.outputs import CompletionOutput, Logprob, RequestOutput
from pagedllm.server.completions import SSE_DONE, sse
from pagedllm.server.errors import APIError, bad_request, error_body, from_engine_error
from pagedllm.server.protocol import ChatCompletionRequest, ChatMessage
from pagedllm.server.state import ServerState, encode_off_loop, final_outputs, merge_streams, usage


async def chat_prompt_ids(
    state: ServerState, messages: Sequence[ChatMessage], add_generation_prompt: bool
) -> list[int]:
    """Token ids of a conversation rendered by the model's chat template (as ``LLM.chat``)."""
    tokenizer = state.tokenizer
    try:
        conversation = [m.to_template_message() for m in messages]
        text = tokenizer.apply_chat_template(conversation, add_generation_prompt=add_generation_prompt)
    except ValueError as e:
        raise bad_request(e, param="messages") from e
    except Exception as e:  # a template error (jinja) is about the messages the user sent
        raise APIError(HTTPStatus.BAD_REQUEST, f"the chat template failed on these messages: {e}") from e
    try:
        return await encode_off_loop(tokenizer, text, add_special_tokens=False)
    except ValueError as e:  # text that is not valid Unicode
        raise bad_request(e, param="messages") from e


def _token_entry(lp: Logprob) -> dict[str, Any]:
    token = lp.decoded_token or ""
    return {"token": token, "logprob": lp.logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(entries: Sequence[dict[int, Logprob]], num_top: int) -> dict[str, Any]:
    """OpenAI's chat shape: per token its entry and its ``num_top`` most likely alternatives."""
    content = []
    for entry in entries:
        sampled = next(iter(entry.values()))
        ranked = sorted((lp for lp in entry.values() if lp.rank is not None), key=lambda lp: lp.rank or 0)
        top = [_token_entry(lp) for lp in ranked[:num_top]]
        content.append({**_token_entry(sampled), "top_logprobs": top})
    return {"content": content}


def _message_choice(completion: CompletionOutput, num_top: int | None) -> dict[str, Any]:
    logprobs = None
    if completion.logprobs is not None and num_top is not None:
        logprobs = chat_logprobs(completion.logprobs, num_top)
    return {
        "index": completion.index,
        "message": {"role": "assistant", "content": completion.text},
        "logprobs": logprobs,
        "finish_reason": completion.finish_reason,
        "stop_reason": completion.stop_reason,
    }


async def create_chat_completion(
    body: ChatCompletionRequest, state: ServerState
) -> JSONResponse | StreamingResponse:
    state.check_model(body.model)
    refused = body.unsupported_field()
    if refused is not None:
        raise APIError(HTTPStatus.BAD_REQUEST, refused[1], param=refused[0])
    try:
        params = body.to_sampling_params()
    except ValueError as e:
        raise bad_request(e) from e
    prompt_ids = await chat_prompt_ids(state, body.messages, body.add_generation_prompt)
    response_id = f"chatcmpl-{uuid.uuid4().hex}"
    field = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    streams = state.start_requests(response_id, [prompt_ids], params, max_tokens_field=field)
    header = {"id": response_id, "created": int(time.time()), "model": state.model_name}
    num_top = (body.top_logprobs or 0) if body.logprobs else None
    if body.stream:
        return StreamingResponse(
            _stream(streams[0], header, num_top, body.include_usage), media_type="text/event-stream"
        )
    (final,) = await final_outputs(streams)
    choices = [_message_choice(c, num_top) for c in final.outputs]
    return JSONResponse({**header, "object": "chat.completion", "choices": choices, "usage": usage([final])})


async def _stream(
    stream: RequestStream, header: dict[str, Any], num_top: int | None, include_usage: bool
) -> AsyncIterator[str]:
    chunk_header = {**header, "object": "chat.completion.chunk"}
    sent_chars: dict[int, int] = {}
    sent_tokens: dict[int, int] = {}
    done: set[int] = set()
    final: RequestOutput | None = None
    try:
        # The role comes first, in its own chunk per choice, as OpenAI sends it.
        for index in range(stream.params.n):
            role = {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
            yield sse({**chunk_header, "choices": [{**role, "finish_reason": None}]})
        async for _, output in merge_streams([stream]):
            for completion in output.outputs:
                index = completion.index
                if index in done:
                    continue
                start = sent_chars.get(index, 0)
                delta = completion.text[start:]
                if not delta and completion.finish_reason is None:
                    continue
                logprobs = None
                if completion.logprobs is not None and num_top is not None:
                    first = sent_tokens.get(index, 0)
                    logprobs = chat_logprobs(completion.logprobs[first : len(completion.token_ids)], num_top)
                sent_chars[index] = len(completion.text)
                sent_tokens[index] = len(completion.token_ids)
                if completion.finish_reason is not None:
                    done.add(index)
                choice = {
                    "index": index,
                    "delta": {"content": delta} if delta else {},
                    "logprobs": logprobs,
                    "finish_reason": completion.finish_reason,
                    "stop_reason": completion.stop_reason,
                }
                yield sse({**chunk_header, "choices": [choice]})
            if output.finished:
                final = output
        if include_usage and final is not None:
            yield sse({**chunk_header, "choices": [], "usage": usage([final])})
    except Exception as e:
        err = e if isinstance(e, APIError) else from_engine_error(e)
        yield sse(error_body(err.status, err.message, err.param, err.code))
    finally:
        stream.abort()  # a no-op once finished; frees the blocks when the client went away
    yield SSE_DONE
