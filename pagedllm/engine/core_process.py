"""The engine core process: ``LLMEngine`` (scheduler, model, KV cache) stepping in a busy loop.

It runs apart from the HTTP server so that the server's Python work (uvicorn, JSON, one async
generator per stream) never holds the GIL the step needs. Each iteration: apply every command queued
by the API process (adds, aborts), run one step, send one ``StepOutput`` (the step's deltas and the
engine's counters). While nothing is unfinished it blocks on the command pipe instead of spinning.

NOTE: the API process owns this process's lifetime. SIGINT and SIGTERM are ignored here (a Ctrl-C
reaches the whole process group, and the server must drain through a live engine); the loop ends on
``ShutdownCore`` or when the command pipe closes (the API process is gone, however it died).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import signal
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from pagedllm.config import EngineConfig
from pagedllm.engine.core_messages import (
    AbortRequests,
    AddRequest,
    Command,
    CoreFailed,
    CoreReady,
    ShutdownCore,
    StepOutput,
)

if TYPE_CHECKING:
    from pagedllm.engine.llm_engine import LLMEngine

logger = logging.getLogger(__name__)

# Room in a pipe for bursts (256 prompts of 512 tokens are ~1 MiB of adds); Linux caps it at
# /proc/sys/fs/pipe-max-size (1 MiB by default) for an unprivileged process.
PIPE_BYTES = 1 << 20


def enlarge_pipe(conn: Connection) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def run_engine_core(config: EngineConfig, commands: Connection, outputs: Connection, log_level: str) -> None:
    """The process's entry point (spawned): build the engine, report ready, then serve commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s engine-core %(name)s: %(message)s")
    enlarge_pipe(outputs)
    try:
        # NOTE: imported here: the API process imports this module but must never load the model code.
        from pagedllm.engine.llm_engine import LLMEngine, freeze_startup_heap

        engine = LLMEngine(config)
    except (ValueError, OSError) as e:  # bad options or files: the message says it all (no traceback)
        outputs.send(CoreFailed(str(e)))
        return
    except Exception as e:
        logger.exception("the engine failed to start")
        outputs.send(CoreFailed(f"{type(e).__name__}: {e}"))
        return
    # NOTE: the model, the framework's modules and the caches are alive for the process's life; moved out
    # of the collector's generations, a full collection no longer walks them (one took 118 ms in the
    # middle of a decode step on an H100 run, session 5's step trace). A CUDA engine has done it already;
    # here the CPU's too.
    freeze_startup_heap()
    vocab_size, stats = engine.arch.vocab_size, engine.core_stats()
    outputs.send(CoreReady(os.getpid(), engine.model_name, vocab_size, engine.max_model_len, stats))
    EngineCoreLoop(engine, commands, outputs).run()


class EngineCoreLoop:
    def __init__(self, engine: LLMEngine, commands: Connection, outputs: Connection) -> None:
        self.engine = engine
        self.commands = commands
        self.outputs = outputs
        self._rejected: list[tuple[str, str]] = []
        self._num_adds_applied = 0
        self._num_steps = 0
        self._step_seconds = 0.0
        self._overhead_seconds = 0.0

    def run(self) -> None:
        engine = self.engine
        try:
            while True:
                if not engine.has_unfinished_requests() and not self._apply(self.commands.recv()):
                    return  # idle: blocked on recv above until the API process sends something
                start = time.perf_counter()
                while self.commands.poll():
                    if not self._apply(self.commands.recv()):
                        return
                deltas, step_seconds = [], 0.0
                if engine.has_unfinished_requests():
                    step_start = time.perf_counter()
                    deltas = engine.step_deltas()
                    step_seconds = time.perf_counter() - step_start
                    self._num_steps += 1
                    self._step_seconds += step_seconds
                stats = engine.core_stats()._replace(
                    num_steps=self._num_steps,
                    step_seconds=self._step_seconds,
                    overhead_seconds=self._overhead_seconds,
                )
                output = StepOutput(deltas, self._rejected, stats, self._num_adds_applied)
                self.outputs.send_bytes(pickle.dumps(output, protocol=pickle.HIGHEST_PROTOCOL))
                self._rejected = []
                self._overhead_seconds += time.perf_counter() - start - step_seconds
        except (EOFError, BrokenPipeError, ConnectionResetError):
            logger.warning("the API process went away; the engine core exits")
        except Exception as e:
            # NOTE: the engine's state after a failed step is unknown: report and exit, keep nothing
            # half-run. The API process fails every request and turns /health 503.
            logger.exception("engine step failed")
            with contextlib.suppress(OSError):
                self.outputs.send(CoreFailed(f"the engine failed: {type(e).__name__}: {e}"))
            raise SystemExit(1) from e

    def _apply(self, batch: list[Command]) -> bool:
        """Apply one batch of commands; False on ``ShutdownCore``."""
        engine = self.engine
        for command in batch:
            if isinstance(command, AddRequest):
                self._num_adds_applied += 1
                try:
                    engine.add_request(command.request_id, command.prompt_token_ids, command.params)
                except (ValueError, TypeError) as e:
                    self._rejected.append((command.request_id, str(e)))
            elif isinstance(command, AbortRequests):
                engine.abort_request(command.request_ids)
            elif isinstance(command, ShutdownCore):
                return False
        return True
