"""Which Triton kernels compile inside a block of code (GPU tests; the interpreter compiles nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def recorded_compiles() -> Iterator[list[str]]:
    """Yields a list that collects the name of every kernel compiled in the block: each time a launch
    misses the process's in-memory cache of compiled variants (a hit on Triton's disk cache counts)."""
    from triton import knobs

    compiled: list[str] = []

    def on_compile(*, fn, **_) -> bool:
        compiled.append(fn.name)
        return False  # compile as usual

    previous = knobs.runtime.jit_cache_hook
    knobs.runtime.jit_cache_hook = on_compile
    try:
        yield compiled
    finally:
        knobs.runtime.jit_cache_hook = previous
