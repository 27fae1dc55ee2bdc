"""Graceful shutdown: on SIGTERM (or Ctrl-C) stop taking requests, let the running ones finish for up to
``--shutdown-timeout`` seconds, end the rest with a clear error, then stop the server.

While draining, the listening socket stays open so that a new request gets a 503 it can act on (retry
elsewhere) rather than a refused connection, and ``/health`` turns 503 so a load balancer stops routing
here. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import FrameType

import uvicorn

from pagedllm.engine.async_engine import ServerShuttingDownError
from pagedllm.server.state import ServerState

logger = logging.getLogger(__name__)

# After the aborts, how long the handlers get to write their final event before uvicorn closes them.
FLUSH_SECONDS = 0.5


async def drain(state: ServerState, timeout: float) -> int:
    """Stop admitting, wait up to ``timeout`` s for in-flight requests, abort the rest; returns how
    many were aborted."""
    state.draining = True
    engine = state.engine
    engine.stop_accepting()
    deadline = time.monotonic() + timeout
    while engine.num_in_flight() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    num_aborted = engine.num_in_flight()
    if num_aborted:
        logger.warning("shutdown timeout (%.1f s): aborting %d unfinished requests", timeout, num_aborted)
        engine.abort_all(
            ServerShuttingDownError(
                f"the server shut down before this request finished (its shutdown timeout is {timeout:g} s); "
                "retry it"
            )
        )
        await asyncio.sleep(FLUSH_SECONDS)
    return num_aborted


class GracefulServer(uvicorn.Server):
    """uvicorn's server, with the first SIGTERM/SIGINT draining the engine before the usual exit."""

    def __init__(self, config: uvicorn.Config, state: ServerState, shutdown_timeout: float) -> None:
        super().__init__(config)
        self.state = state
        self.shutdown_timeout = shutdown_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self._drain_task is not None or self.state.draining:
            super().handle_exit(sig, frame)  # a second signal: exit now
            return
        logger.warning("signal %d: draining (up to %.1f s) before shutting down", sig, self.shutdown_timeout)
        # NOTE: a signal handler runs between two bytecodes of the loop's thread: hand over, don't act.
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await drain(self.state, self.shutdown_timeout)
        finally:
            self.should_exit = True
