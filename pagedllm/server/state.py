"""What every endpoint shares: the async engine, the served model's name, and request admission."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from pagedllm.engine.async_engine import AsyncEngine, RequestStream
from pagedllm.engine.input_processor import MaxTokensTooLargeError, PromptInput
from pagedllm.outputs import RequestOutput
from pagedllm.sampling_params import SamplingParams
from pagedllm.server.errors import APIError, from_engine_error
from pagedllm.server.limits import RequestLimits
from pagedllm.server.metrics import ServerMetrics
from pagedllm.tokenizer.tokenizer import Tokenizer


@dataclass(slots=True)
class ServerState:
    engine: AsyncEngine
    model_name: str
    metrics: ServerMetrics
    api_key: str | None = None
    limits: RequestLimits = field(default_factory=RequestLimits)
    draining: bool = False  # SIGTERM received: new requests get 503 while the running ones finish

    @property
    def tokenizer(self) -> Tokenizer:
        tokenizer = self.engine.tokenizer
        if tokenizer is None:
            raise APIError(HTTPStatus.BAD_REQUEST, "this model has no tokenizer: send prompts as token ids")
        return tokenizer

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    def check_model(self, model: str | None) -> None:
        """OpenAI requires ``model``; pagedllm serves one model and accepts its name (or none)."""
        if model is not None and model != self.model_name:
            raise APIError(
                HTTPStatus.NOT_FOUND,
                f"the model {model!r} does not exist; this server serves {self.model_name!r}",
                param="model",
                code="model_not_found",
            )

    def start_requests(
        self,
        request_id: str,
        prompts: Sequence[PromptInput],
        params: SamplingParams,
        max_tokens_set: bool = True,
        max_tokens_field: str = "max_tokens",
    ) -> list[RequestStream]:
        """Queue one engine request per prompt; on any failure abort those already queued.
        ``max_tokens_set``: whether the client chose max_tokens (else a default the limits may cap), under
        the name ``max_tokens_field``. A chosen max_tokens that does not fit after a prompt is a 400, as
        OpenAI's and vLLM's servers answer it; a default is cut to the room instead."""
        must_fit = max_tokens_set and params.max_tokens is not None  # the client's own (limits may set one)
        params = self.limits.apply(params, len(prompts), max_tokens_set)  # a 400 past the operator's limits
        streams: list[RequestStream] = []
        try:
            # Checked once: the prompts of one request are admitted together (a request of more prompts
            # than --max-waiting-requests would otherwise be refused by its own first prompts, forever).
            self.engine.check_queue_room()
            for i, prompt in enumerate(prompts):
                suffix = f"-{i}" if len(prompts) > 1 else ""
                try:
                    streams.append(
                        self.engine.add_request(
                            prompt,
                            params,
                            request_id + suffix,
                            self.limits.max_prompt_tokens,
                            queue_checked=True,
                            max_tokens_must_fit=must_fit,
                        )
                    )
                except (ValueError, TypeError) as e:
                    where = f"prompt {i}: " if len(prompts) > 1 else ""
                    message = str(e)
                    if isinstance(e, MaxTokensTooLargeError):
                        param, code = max_tokens_field, "context_length_exceeded"
                        # The engine names max_tokens; the client may have sent max_completion_tokens.
                        message = message.replace("max_tokens=", f"{max_tokens_field}=", 1)
                    else:
                        param, code = "prompt", None
                    raise APIError(HTTPStatus.BAD_REQUEST, f"{where}{message}", param=param, code=code) from e
        except Exception as e:
            for stream in streams:
                stream.abort()
            raise e if isinstance(e, APIError) else from_engine_error(e) from e
        return streams


# Prompts from this many characters up are tokenized in a worker thread (~1.4 ms of tokenizing on a
# 2-core VM, more than the hop costs): the event loop, which carries every other stream, would otherwise
# stop for as long (an 8 MB prompt: 11 s).
OFF_LOOP_PROMPT_CHARS = 4096


async def encode_off_loop(tokenizer: Tokenizer, text: str, add_special_tokens: bool = True) -> list[int]:
    """``tokenizer.encode``, in a worker thread for a long text (it releases the GIL meanwhile)."""
    if len(text) < OFF_LOOP_PROMPT_CHARS:
        return tokenizer.encode(text, add_special_tokens=add_special_tokens)
    return await asyncio.to_thread(tokenizer.encode, text, add_special_tokens)


async def merge_streams(streams: Sequence[RequestStream]) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Outputs of several streams as they come, tagged with the stream's index. Leaving early (error,
    client gone) aborts every request still running."""
    try:
        if len(streams) == 1:
            async for output in streams[0]:
                yield 0, output
            return
        queue: asyncio.Queue[tuple[int, RequestOutput | BaseException | None]] = asyncio.Queue()

        async def pump(index: int, stream: RequestStream) -> None:
            try:
                async for output in stream:
                    queue.put_nowait((index, output))
            except Exception as e:
                queue.put_nowait((index, e))
            finally:
                queue.put_nowait((index, None))

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
        try:
            remaining = len(streams)
            while remaining:
                index, item = await queue.get()
                if item is None:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield index, item
        finally:
            for task in tasks:
                task.cancel()
    finally:
        for stream in streams:
            stream.abort()


async def final_outputs(streams: Sequence[RequestStream]) -> list[RequestOutput]:
    """Each stream's last (finished) output, in order."""
    finals: list[RequestOutput | None] = [None] * len(streams)
    try:
        async for index, output in merge_streams(streams):
            finals[index] = output
    except APIError:
        raise
    except Exception as e:
        raise from_engine_error(e) from e
    return [f for f in finals if f is not None]


def usage(finals: Sequence[RequestOutput]) -> dict[str, object]:
    prompt_tokens = sum(len(f.prompt_token_ids) for f in finals)
    completion_tokens = sum(len(c.token_ids) for f in finals for c in f.outputs)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": sum(f.num_cached_tokens for f in finals)},
    }
