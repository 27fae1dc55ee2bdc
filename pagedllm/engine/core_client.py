"""The API process's end of the engine core: starts the process, sends commands, reads step outputs.

Commands queued during one event-loop tick go out as one message, from a writer thread: a big burst of
adds may fill the pipe, and the event loop must keep reading outputs meanwhile (else the core blocks
sending them while the loop blocks sending commands: a deadlock). Outputs are read on the event loop
itself (``add_reader``), so applying them never contends with a second thread of this process.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from pagedllm.config import EngineConfig
from pagedllm.engine.core_messages import Command, CoreFailed, CoreReady, ShutdownCore, StepOutput
from pagedllm.engine.core_process import enlarge_pipe, run_engine_core

logger = logging.getLogger(__name__)

# Step outputs read per wake-up of the reader, so a backlog never starves the HTTP side of the loop.
MAX_OUTPUTS_PER_READ = 8
# Commands per message at most: a burst of requests is handled in one event-loop tick (each handler runs
# until it awaits its first output, ~1 ms), and holding all their adds until the tick ends kept the core
# waiting: 239 adds reached it ~350 ms into a 256-request burst (H100, session 5 step trace).
MAX_COMMANDS_PER_MESSAGE = 16


class PipeReader:
    """Reads pickled messages from a pipe on the event loop, each message whole.

    ``handle(message)`` returns False to stop reading; ``on_eof()`` runs once if the writer's end
    closes (its process died). At most ``MAX_OUTPUTS_PER_READ`` messages per wake-up.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: Connection,
        handle: Callable[[object], bool],
        on_eof: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._conn = conn
        self._handle = handle
        self._on_eof = on_eof
        self._active = True
        loop.add_reader(conn.fileno(), self._read)
        # NOTE: uvloop (libuv's uv_poll_init) puts a watched fd in non-blocking mode. A message longer
        # than what the pipe holds at that moment then fails half read with EAGAIN, and a byte stream
        # cannot be resumed mid-message. Reads block instead: we are woken only once data is there,
        # and the writer is in the middle of sending the rest.
        os.set_blocking(conn.fileno(), True)

    def _read(self) -> None:
        try:
            for _ in range(MAX_OUTPUTS_PER_READ):
                if not self._handle(pickle.loads(self._conn.recv_bytes())):
                    self.stop()
                    return
                if not self._active or not self._conn.poll():
                    return
        except (EOFError, OSError):  # the writer's end closed: its process is gone
            self.stop()
            self._on_eof()

    def stop(self) -> None:
        if self._active:
            self._active = False
            if not self._conn.closed:
                self._loop.remove_reader(self._conn.fileno())


class CommandSender:
    """Sends commands from the event loop to the core through a writer thread.

    The commands queued during one event-loop tick leave as one message (one pickle, one wake-up of the
    core), at most ``MAX_COMMANDS_PER_MESSAGE`` per message, in the order they were queued. Before
    ``bind`` (not serving yet) each command leaves alone.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Command] = []
        self._queue: queue.SimpleQueue[list[Command] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="pagedllm-core-writer", daemon=True)
        self._writer.start()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def send(self, command: Command) -> None:
        if self._loop is None:
            self._queue.put([command])
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(command)
        if len(self._pending) >= MAX_COMMANDS_PER_MESSAGE:
            self.flush()  # the flush scheduled above then finds nothing, or the next commands

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            self._queue.put(batch)

    def close(self) -> None:
        """Send what is queued, then stop the writer thread."""
        self.flush()
        self._queue.put(None)

    def _write(self) -> None:
        while (batch := self._queue.get()) is not None:
            try:
                self._conn.send(batch)
            except OSError:  # the core is gone; the output reader reports it
                return
            except Exception:
                # NOTE: a bug (every command is plain data); keep the thread, or every later command,
                # ShutdownCore included, would wait in the queue forever.
                logger.exception("could not send %d commands to the engine core", len(batch))


class EngineCoreStartError(RuntimeError):
    """The engine core process failed to start (its message says why)."""


class EngineCoreClient:
    """Spawns ``run_engine_core`` and waits until it is ready (blocking: call before serving)."""

    def __init__(self, config: EngineConfig, log_level: str = "warning") -> None:
        # NOTE: spawn, not fork: this process must never initialise CUDA, and a forked child of a
        # process with threads (tokenizers, the event loop) is not safe.
        context = multiprocessing.get_context("spawn")
        core_commands, self._commands = context.Pipe(duplex=False)
        self._outputs, core_outputs = context.Pipe(duplex=False)
        enlarge_pipe(self._commands)
        self.process = context.Process(
            target=run_engine_core,
            args=(config, core_commands, core_outputs, log_level),
            name="pagedllm-engine-core",
            daemon=True,  # a backstop: multiprocessing terminates it when this process exits
        )
        self.process.start()
        # Close our copies of the core's ends, so either side sees EOF when the other one dies.
        core_commands.close()
        core_outputs.close()
        self.ready = self._wait_ready()
        self._sender = CommandSender(self._commands)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: PipeReader | None = None
        self._is_closed = False
        self._closing = False

    def _wait_ready(self) -> CoreReady:
        while not self._outputs.poll(0.5):
            if not self.process.is_alive():
                raise EngineCoreStartError(
                    f"the engine core process exited with code {self.process.exitcode} while starting"
                )
        try:
            message = self._outputs.recv()
        except EOFError:
            self.process.join(5)
            raise EngineCoreStartError(
                f"the engine core process exited with code {self.process.exitcode} while starting"
            ) from None
        if isinstance(message, CoreFailed):
            self.process.join(10)
            raise EngineCoreStartError(message.message)
        assert isinstance(message, CoreReady), message
        return message

    # -- commands ----------------------------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue a command (see ``CommandSender``); nothing once the core is closed."""
        if not self._is_closed:
            self._sender.send(command)

    # -- outputs -----------------------------------------------------------------------------------

    def attach(
        self,
        on_output: Callable[[StepOutput], None],
        on_dead: Callable[[str], None],
    ) -> None:
        """Start reading step outputs on the running event loop; ``on_dead(reason)`` once if the core
        fails or its process dies."""
        self._loop = asyncio.get_running_loop()
        self._sender.bind(self._loop)
        self._on_output = on_output
        self._on_dead = on_dead
        self._reader = PipeReader(self._loop, self._outputs, self._on_message, self._on_eof)

    def _on_message(self, message: object) -> bool:
        if self._closing:
            return True  # read and dropped: see close()
        if isinstance(message, CoreFailed):
            self._dead(message.message)
            return False
        assert isinstance(message, StepOutput), message
        self._on_output(message)
        return True

    def _on_eof(self) -> None:
        if self._closing:
            return  # the core exited as asked
        self.process.join(1.0)
        self._dead(f"the engine core process died (exit code {self.process.exitcode})")

    def _dead(self, reason: str) -> None:
        logger.error("engine core: %s", reason)
        self._detach()
        self._is_closed = True
        self._on_dead(reason)

    def _detach(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def is_alive(self) -> bool:
        return not self._is_closed and self.process.is_alive()

    async def close(self, timeout: float = 10.0) -> None:
        """Tell the core to exit (it finishes its step first); terminate it if it does not.

        Its outputs are read (and dropped) until it has exited: a core blocked writing into a full
        output pipe would never read ``ShutdownCore`` (it was killed at the timeout).
        """
        self._closing = True
        if not self._is_closed:
            self._sender.send(ShutdownCore())
            self._is_closed = True
        self._sender.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.process.join, timeout)
        if self.process.is_alive():
            logger.warning("the engine core did not exit in %.0f s; terminating it", timeout)
            self.process.kill()
            await loop.run_in_executor(None, self.process.join, 5.0)
        self._detach()
        self._outputs.close()
