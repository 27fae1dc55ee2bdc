"""An opt-in per-step trace: one JSON line per engine step, for finding where a run's time goes.

Set ``PAGEDLLM_STEP_TRACE=PATH`` and every ``LLMEngine`` built in that process (the server's engine
core included: it inherits the environment) appends to ``PATH.<pid>`` a line per step::

    {"t": seconds since the trace began, "ms": the step call's wall time,
     "seqs": sequences launched, "tokens": tokens launched, "prefill_tokens": of those, in
     sequences computing more than one token, "ahead": launched before the previous step's tokens
     were read (async scheduling), "adds": requests added since the last row, "waiting": requests
     waiting after the call, "gc_ms": time in Python's garbage collector since the last row,
     "phases": {name: ms} of the call's parts the engine marked}

With async scheduling a call launches one step and collects the one before it, so ``ms`` is the call,
not the launched step's device time; the rows still show which steps were mixed or pure decode.
"""

from __future__ import annotations

import gc
import json
import os
import time
import weakref
from pathlib import Path
from typing import IO, Any

from pagedllm.core.scheduler_output import SchedulerOutput

TRACE_ENV = "PAGEDLLM_STEP_TRACE"


class _GcTimer:
    """Time spent in the garbage collector (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


def _release(file: IO[str], gc_timer: _GcTimer) -> None:
    file.close()
    if gc_timer in gc.callbacks:
        gc.callbacks.remove(gc_timer)


class StepTrace:
    def __init__(self, path: str) -> None:
        target = Path(f"{path}.{os.getpid()}")
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self._file: IO[str] = target.open("a", buffering=1)
        self._start = time.perf_counter()
        self._gc = _GcTimer()
        self._phases: dict[str, float] = {}
        self._num_adds = 0
        gc.callbacks.append(self._gc)
        # The engine that owns the trace may go before the process does (tests, a notebook).
        weakref.finalize(self, _release, self._file, self._gc)

    def mark(self, phase: str, started: float) -> None:
        """Add the time since ``started`` to this call's ``phase``."""
        self._phases[phase] = self._phases.get(phase, 0.0) + time.perf_counter() - started

    @classmethod
    def from_env(cls) -> StepTrace | None:
        path = os.environ.get(TRACE_ENV)
        return cls(path) if path else None

    def count_add(self) -> None:
        self._num_adds += 1

    def record(self, started: float, launched: SchedulerOutput | None, ahead: bool, num_waiting: int) -> None:
        scheduled = launched.scheduled if launched is not None else []
        tokens = sum(s.num_tokens for s in scheduled)
        prefill = sum(s.num_tokens for s in scheduled if s.num_tokens > 1)
        row = {
            "t": round(started - self._start, 6),
            "ms": round((time.perf_counter() - started) * 1e3, 3),
            "seqs": len(scheduled),
            "tokens": tokens,
            "prefill_tokens": prefill,
            "ahead": ahead,
            "adds": self._num_adds,
            "waiting": num_waiting,
            "gc_ms": round(self._gc.seconds * 1e3, 3),
            "phases": {name: round(seconds * 1e3, 3) for name, seconds in self._phases.items()},
        }
        self._gc.seconds = 0.0
        self._phases = {}
        self._num_adds = 0
        self._file.write(json.dumps(row) + "\n")
