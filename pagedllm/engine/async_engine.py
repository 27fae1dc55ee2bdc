"""The engine behind the server, as seen from the API process: validates requests, hands them to the
engine core process, and turns its per-step deltas into one async stream per request.

Two processes (see docs/ARCHITECTURE.md, "Serving"): this one runs the HTTP server and never touches
the model or the GPU; ``core_process.run_engine_core`` steps ``LLMEngine``. Validation and
tokenization (``InputProcessor``) run here, before anything is sent, so a bad request fails at once
with the same message as offline. Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pagedllm.config import EngineConfig
from pagedllm.engine.core_client import EngineCoreClient
from pagedllm.engine.core_messages import AbortRequests, AddRequest, CoreStats, StepOutput
from pagedllm.engine.input_processor import InputProcessor, PromptInput
from pagedllm.engine.request_stream import RequestStream, RequestTimes
from pagedllm.outputs import RequestOutput
from pagedllm.sampling_params import SamplingParams
from pagedllm.tokenizer.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

__all__ = [
    "AsyncEngine",
    "EngineDeadError",
    "QueueFullError",
    "RequestStream",
    "RequestTimes",
    "ServerShuttingDownError",
]


class QueueFullError(RuntimeError):
    """The waiting queue already holds ``max_waiting_requests`` requests (HTTP 503)."""


class EngineDeadError(RuntimeError):
    """The engine core failed, died or was shut down; the request cannot finish (HTTP 500)."""


class ServerShuttingDownError(EngineDeadError):
    """The server is draining for shutdown: it takes no new request, and aborts the ones still running
    when its shutdown timeout ends (HTTP 503: retry elsewhere)."""


# Called on the event loop when a request ends (finished, stopped, or aborted by its client).
FinishListener = Callable[[RequestTimes], None]


def load_api_tokenizer(config: EngineConfig) -> Tokenizer | None:
    """The tokenizer the engine core loads too (requests are tokenized here, outputs decoded there)."""
    from pagedllm.model.default_model import default_model_path
    from pagedllm.tokenizer.tokenizer import load_tokenizer

    if config.load_format == "dummy":
        return None
    return load_tokenizer(Path(config.model) if config.model is not None else default_model_path())


class AsyncEngine:
    """The API process's engine. ``start()`` inside the running event loop before serving."""

    def __init__(
        self,
        core: EngineCoreClient,
        config: EngineConfig,
        tokenizer: Tokenizer | None,
        max_waiting_requests: int | None = None,
    ) -> None:
        if max_waiting_requests is not None and max_waiting_requests < 1:
            raise ValueError(f"max_waiting_requests must be None or >= 1, got {max_waiting_requests}")
        ready = core.ready
        self.core = core
        self.model_name = ready.model_name
        self.max_model_len = ready.max_model_len
        self.vocab_size = ready.vocab_size
        self.tokenizer = tokenizer
        self.inputs = InputProcessor(
            tokenizer, ready.vocab_size, ready.max_model_len, config.max_num_seqs, config.kv_policy
        )
        self.max_waiting_requests = max_waiting_requests
        # NOTE: keyed by the id the core knows, unique per add (``_core_request_id``): an id the caller
        # reuses right after an abort must not receive the deltas the core had already sent, or was
        # still computing, for the request that held it before.
        self._streams: dict[str, RequestStream] = {}
        self._core_ids: dict[str, str] = {}  # the caller's request id -> the core's
        self._num_added = itertools.count()
        self._listeners: list[FinishListener] = []
        self._ids = itertools.count()
        self._stats: CoreStats = ready.stats
        self._num_adds_sent = 0
        self._num_adds_applied = 0
        self._is_started = False
        self._error: EngineDeadError | None = None
        self._accepting = True  # False once draining for shutdown

    @classmethod
    def launch(
        cls, config: EngineConfig, max_waiting_requests: int | None = None, log_level: str = "warning"
    ) -> AsyncEngine:
        """Start the engine core process and wait until its engine is built (blocking)."""
        core = EngineCoreClient(config, log_level)
        try:
            tokenizer = load_api_tokenizer(config)
        except BaseException:
            core.process.kill()
            raise
        return cls(core, config, tokenizer, max_waiting_requests)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.core.attach(self._on_step_output, self._on_core_dead)
        self._is_started = True

    async def shutdown(self) -> None:
        self._fail_all(ServerShuttingDownError("the server is shutting down"))
        await self.core.close()

    def stop_accepting(self) -> None:
        """Refuse new requests from now on (``ServerShuttingDownError``); running ones carry on."""
        self._accepting = False

    def num_in_flight(self) -> int:
        """Requests added and not yet finished (streams the server still answers)."""
        return len(self._streams)

    def abort_all(self, error: BaseException) -> None:
        """End every request with ``error`` (its stream raises it); the core frees their blocks."""
        core_ids = list(self._streams)
        streams = list(self._streams.values())
        self._streams.clear()
        self._core_ids.clear()
        now = time.monotonic()
        for stream in streams:
            stream.fail(error)
            self._finish(stream, now, "abort")
        if core_ids:
            self.core.send(AbortRequests(core_ids))

    @property
    def is_running(self) -> bool:
        return self._is_started and self._error is None and self.core.is_alive()

    @property
    def dead_reason(self) -> str | None:
        return str(self._error) if self._error is not None else None

    def add_listener(self, listener: FinishListener) -> None:
        self._listeners.append(listener)

    # -- requests ----------------------------------------------------------------------------------

    def num_waiting(self) -> int:
        """Requests waiting to be scheduled: the core's count after its last step, plus the adds sent
        since that it had not applied yet."""
        return self._stats.num_waiting + self._num_adds_sent - self._num_adds_applied

    def add_request(
        self,
        prompt: PromptInput,
        params: SamplingParams,
        request_id: str | None = None,
        max_prompt_tokens: int | None = None,
        queue_checked: bool = False,
        max_tokens_must_fit: bool = False,
    ) -> RequestStream:
        """Validate and queue a request. Raises ``ValueError`` (bad request, or a prompt over
        ``max_prompt_tokens``; ``MaxTokensTooLargeError`` where ``max_tokens_must_fit`` and
        ``params.max_tokens`` is more than the room after the prompt), ``QueueFullError`` (unless
        ``queue_checked``: the caller called ``check_queue_room`` for a group of requests),
        ``EngineDeadError`` (``ServerShuttingDownError`` while draining); iterate the returned stream for
        its outputs."""
        if not self._accepting:
            raise ServerShuttingDownError("the server is shutting down and takes no new requests")
        if not self.is_running:
            raise self._error or EngineDeadError("the engine core is not running")
        request_id = request_id if request_id is not None else f"req-{next(self._ids)}"
        if request_id in self._core_ids:
            raise ValueError(f"request id {request_id!r} is already in use")
        prompt_text, prompt_ids = self.inputs.process(prompt, params)
        if max_prompt_tokens is not None and len(prompt_ids) > max_prompt_tokens:
            raise ValueError(
                f"prompt has {len(prompt_ids)} tokens; this server allows {max_prompt_tokens} "
                "(the server's --max-prompt-tokens)"
            )
        if max_tokens_must_fit:
            self.inputs.check_max_tokens_fit(prompt_ids, params)
        if not queue_checked:
            self.check_queue_room()
        times = RequestTimes(request_id, time.monotonic(), len(prompt_ids))
        stream = RequestStream(request_id, prompt_text, prompt_ids, params, times, self.abort)
        core_id = f"{next(self._num_added)}:{request_id}"
        self._streams[core_id] = stream
        self._core_ids[request_id] = core_id
        self._num_adds_sent += 1
        self.core.send(AddRequest(core_id, prompt_ids, params))
        return stream

    def check_queue_room(self) -> None:
        """Raises ``QueueFullError`` if ``max_waiting_requests`` requests are waiting already."""
        if self.max_waiting_requests is not None and self.num_waiting() >= self.max_waiting_requests:
            raise QueueFullError(
                f"the server is overloaded: {self.num_waiting()} requests are waiting "
                f"(--max-waiting-requests {self.max_waiting_requests}); retry later"
            )

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
        """Forget the request here at once; the core frees its blocks before its next step."""
        core_id = self._core_ids.pop(request_id, None)
        if core_id is not None:
            self._finish(self._streams.pop(core_id), time.monotonic(), "abort")
            self.core.send(AbortRequests([core_id]))

    async def stats(self) -> dict[str, Any]:
        """The engine's counters as of its last step (sent with every step output)."""
        stats: dict[str, Any] = self._stats.as_dict()
        stats["num_waiting"] = self.num_waiting()
        return stats

    # -- what the core sends -----------------------------------------------------------------------

    def _on_step_output(self, output: StepOutput) -> None:
        self._stats = output.stats
        self._num_adds_applied = output.num_adds_applied
        for core_id, message in output.rejected:
            stream = self._forget(core_id)
            if stream is not None:
                stream.fail(ValueError(message))
        now = time.monotonic()
        streams = self._streams
        for delta in output.deltas:
            core_id, _, is_finished, _ = delta
            stream = streams.get(core_id)
            if stream is None:  # aborted while its last step ran
                continue
            try:
                stream.apply(delta, now)
            except Exception as e:  # a bug must cost this request only, never the step's others
                logger.exception("applying a step output to request %s failed", stream.request_id)
                self._forget(core_id)
                stream.fail(EngineDeadError(f"the server failed on this request: {type(e).__name__}: {e}"))
                self.core.send(AbortRequests([core_id]))
                continue
            if is_finished:
                self._forget(core_id)
                self._finish(stream, now, stream.finish_reason())

    def _forget(self, core_id: str) -> RequestStream | None:
        stream = self._streams.pop(core_id, None)
        if stream is not None:
            self._core_ids.pop(stream.request_id, None)
        return stream

    def _on_core_dead(self, reason: str) -> None:
        self._error = EngineDeadError(reason)
        self._fail_all(self._error)

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
        self._core_ids.clear()
        for stream in streams:
            stream.fail(error)
