"""The engine behind a server: one background loop steps ``LLMEngine``; each request is an async stream.

Threading model: the ``LLMEngine`` is touched by one thread at a time. ``step()`` runs in a single worker
thread (so the event loop keeps serving HTTP while the model runs); adds and aborts are queued and
applied by the loop *between* steps, on the event loop's thread. Validation and tokenization
(``make_request``) run on the caller's side, before queueing, so a bad request fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pagedllm.engine.llm_engine import LLMEngine, PromptInput
from pagedllm.engine.output_processor import RequestTracker
from pagedllm.outputs import RequestOutput
from pagedllm.sampling_params import SamplingParams

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The waiting queue already holds ``max_waiting_requests`` requests (HTTP 503)."""


class EngineDeadError(RuntimeError):
    """The engine loop failed or was shut down; the request cannot finish (HTTP 500)."""


class ServerShuttingDownError(EngineDeadError):
    """The server is draining for shutdown: it takes no new request, and aborts the ones still running
    when its shutdown timeout ends (HTTP 503: retry elsewhere)."""


@dataclass(slots=True)
class RequestTimes:
    """One request's life as the async engine saw it (``time.monotonic`` seconds)."""

    request_id: str
    arrival: float
    num_prompt_tokens: int
    first_token: float | None = None
    finished: float | None = None
    num_generation_tokens: int = 0  # summed over the request's n sequences
    max_sequence_tokens: int = 0  # the longest sequence: what a client waits for
    finish_reason: str | None = None


# Called on the event loop when a request ends (finished, stopped, or aborted by its client).
FinishListener = Callable[[RequestTimes], None]


class RequestStream:
    """Async iterator of a request's cumulative ``RequestOutput``s; closing it early aborts the request.

    NOTE: a slow consumer is handed only the newest output (each holds the full text and token ids so
    far), so a stalled client never makes the server buffer one output per step.
    """

    def __init__(self, engine: AsyncEngine, tracker: RequestTracker, times: RequestTimes) -> None:
        self._engine = engine
        self.tracker = tracker
        self.times = times
        self._queue: asyncio.Queue[RequestOutput | BaseException] = asyncio.Queue()
        self.finished = False

    @property
    def request_id(self) -> str:
        return self.tracker.request_id

    def _put(self, item: RequestOutput | BaseException) -> None:
        self._queue.put_nowait(item)

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> RequestOutput:
        if self.finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        while not self._queue.empty() and not isinstance(item, BaseException):
            item = self._queue.get_nowait()  # coalesce: outputs are cumulative
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        if item.finished:
            self.finished = True
        return item

    def abort(self) -> None:
        """Stop the request (a no-op once it finished); its blocks are freed before the next step."""
        if not self.finished:
            self.finished = True
            self._engine.abort(self.request_id)

    async def aclose(self) -> None:
        self.abort()


class AsyncEngine:
    """Wraps an ``LLMEngine`` for asyncio servers. ``start()`` inside a running event loop first."""

    def __init__(self, engine: LLMEngine, max_waiting_requests: int | None = None) -> None:
        if max_waiting_requests is not None and max_waiting_requests < 1:
            raise ValueError(f"max_waiting_requests must be None or >= 1, got {max_waiting_requests}")
        self.engine = engine
        self.max_waiting_requests = max_waiting_requests
        self._streams: dict[str, RequestStream] = {}
        self._pending_adds: list[RequestStream] = []
        self._pending_aborts: set[str] = set()
        self._stats_waiters: list[asyncio.Future[dict[str, Any]]] = []
        self._listeners: list[FinishListener] = []
        self._ids = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagedllm-step")
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._is_stepping = False
        self._error: BaseException | None = None
        self._accepting = True  # False once draining for shutdown

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="pagedllm-engine-loop")

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fail_all(ServerShuttingDownError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    def stop_accepting(self) -> None:
        """Refuse new requests from now on (``ServerShuttingDownError``); running ones carry on."""
        self._accepting = False

    def num_in_flight(self) -> int:
        """Requests added and not yet finished (streams the server still answers)."""
        return len(self._streams)

    def abort_all(self, error: BaseException) -> None:
        """End every request with ``error`` (its stream raises it) and free their blocks between steps.

        NOTE: unlike ``_fail_all`` this never touches the engine directly, so it is safe while a step
        runs in the worker thread: the aborts are applied by the loop, before its next step.
        """
        for stream in list(self._streams.values()):
            stream._put(error)
            self._pending_aborts.add(stream.request_id)
        self._wake()

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done() and self._error is None

    def add_listener(self, listener: FinishListener) -> None:
        self._listeners.append(listener)

    # -- requests ----------------------------------------------------------------------------------

    def num_waiting(self) -> int:
        """Requests queued and not yet scheduled (an estimate while a step runs)."""
        return len(self.engine.scheduler.waiting) + len(self._pending_adds)

    def add_request(
        self,
        prompt: PromptInput,
        params: SamplingParams,
        request_id: str | None = None,
        max_prompt_tokens: int | None = None,
    ) -> RequestStream:
        """Validate and queue a request. Raises ``ValueError`` (bad request, or a prompt over
        ``max_prompt_tokens``), ``QueueFullError``, ``EngineDeadError`` (``ServerShuttingDownError``
        while draining); iterate the returned stream for its outputs."""
        if not self._accepting:
            raise ServerShuttingDownError("the server is shutting down and takes no new requests")
        if not self.is_running:
            raise EngineDeadError("the engine loop is not running")
        request_id = request_id if request_id is not None else f"req-{next(self._ids)}"
        if request_id in self._streams:
            raise ValueError(f"request id {request_id!r} is already in use")
        tracker = self.engine.make_request(prompt, params, request_id)
        num_prompt_tokens = len(tracker.parent.prompt_token_ids)
        if max_prompt_tokens is not None and num_prompt_tokens > max_prompt_tokens:
            raise ValueError(
                f"prompt has {num_prompt_tokens} tokens; this server allows {max_prompt_tokens} "
                "(the server's --max-prompt-tokens)"
            )
        if self.max_waiting_requests is not None and self.num_waiting() >= self.max_waiting_requests:
            raise QueueFullError(
                f"the server is overloaded: {self.num_waiting()} requests are waiting "
                f"(--max-waiting-requests {self.max_waiting_requests}); retry later"
            )
        times = RequestTimes(request_id, time.monotonic(), len(tracker.parent.prompt_token_ids))
        stream = RequestStream(self, tracker, times)
        self._streams[request_id] = stream
        self._pending_adds.append(stream)
        self._wake()
        return stream

    async def generate(
        self, prompt: PromptInput, params: SamplingParams, request_id: str | None = None
    ) -> AsyncIterator[RequestOutput]:
        """Convenience: ``add_request`` then iterate; the request is aborted if the caller stops early."""
        stream = self.add_request(prompt, params, request_id)
        try:
            async for output in stream:
                yield output
        finally:
            stream.abort()

    def abort(self, request_id: str) -> None:
        if request_id in self._streams:
            self._pending_aborts.add(request_id)
            self._wake()

    async def stats(self) -> dict[str, Any]:
        """``LLMEngine.kv_cache_stats()`` read between steps (never while a step mutates the pool)."""
        if not self._is_stepping:
            return self._stats_now()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._stats_waiters.append(future)
        return await future

    def _stats_now(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self.engine.kv_cache_stats())
        stats["num_waiting"] = self.num_waiting()
        return stats

    # -- the loop ----------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            self._apply_pending()
            if not self.engine.has_unfinished_requests():
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._is_stepping = True
            try:
                outputs = await loop.run_in_executor(self._executor, self.engine.step)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # NOTE: the engine's state after a failed step is unknown: fail every request, keep
                # nothing half-run, and report the loop dead (the health check turns 503).
                logger.exception("engine step failed")
                self._error = e
                self._is_stepping = False
                self._answer_stats_waiters()
                self._fail_all(EngineDeadError(f"the engine failed: {type(e).__name__}: {e}"))
                return
            finally:
                self._is_stepping = False
            self._answer_stats_waiters()
            now = time.monotonic()
            for output in outputs:
                self._dispatch(output, now)

    def _apply_pending(self) -> None:
        if self._pending_aborts:
            aborted = [rid for rid in self._pending_aborts if rid in self._streams]
            self._pending_aborts.clear()
            self.engine.abort_request(aborted)
            now = time.monotonic()
            for request_id in aborted:
                stream = self._streams.pop(request_id)
                if stream in self._pending_adds:
                    self._pending_adds.remove(stream)
                self._finish(stream, now, "abort")
        adds, self._pending_adds = self._pending_adds, []
        for stream in adds:
            try:
                self.engine.add_tracked_request(stream.tracker)
            except (ValueError, TypeError) as e:
                self._streams.pop(stream.request_id, None)
                stream._put(e)

    def _answer_stats_waiters(self) -> None:
        waiters, self._stats_waiters = self._stats_waiters, []
        if not waiters:
            return
        stats = self._stats_now()
        for future in waiters:
            if not future.done():
                future.set_result(stats)

    def _dispatch(self, output: RequestOutput, now: float) -> None:
        stream = self._streams.get(output.request_id)
        if stream is None:  # aborted while its last step ran
            return
        times = stream.times
        num_tokens = [len(c.token_ids) for c in output.outputs]
        if times.first_token is None and any(num_tokens):
            times.first_token = now
        times.num_generation_tokens = sum(num_tokens)
        times.max_sequence_tokens = max(num_tokens, default=0)
        stream._put(output)
        if output.finished:
            del self._streams[output.request_id]
            reasons = {c.finish_reason for c in output.outputs}
            self._finish(stream, now, "length" if "length" in reasons else (reasons.pop() or "stop"))

    def _finish(self, stream: RequestStream, now: float, reason: str) -> None:
        stream.times.finished = now
        stream.times.finish_reason = reason
        for listener in self._listeners:
            try:
                listener(stream.times)
            except Exception:  # metrics must never take a request down
                logger.exception("finish listener failed")

    def _fail_all(self, error: BaseException) -> None:
        streams = list(self._streams.values())
        self._streams.clear()
        self._pending_adds.clear()
        with contextlib.suppress(Exception):
            self.engine.abort_request([s.request_id for s in streams])
        for stream in streams:
            stream._put(error)
