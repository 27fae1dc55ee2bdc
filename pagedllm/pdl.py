"""Programmatic dependent launch (PDL) for the Triton kernels of a step (Hopper and newer GPUs).

A kernel launched with PDL may start while the kernel before it on the stream still runs: its programs
become resident once every program of that kernel has signalled (``gdc_launch_dependents``), and each
waits (``gdc_wait``) for that kernel to have finished and flushed its writes before it reads anything.
What a kernel does before the wait (a linear layer's weight prefetch) overlaps the previous kernel's
tail, and the gap between two kernels, ~1 us inside a CUDA graph, mostly goes: a decode step of a
16-layer model crosses ~170 of them.

Every kernel that takes ``USE_PDL`` keeps two rules, which make it safe after any kernel:
- before ``gdc_wait`` it writes nothing and reads only what no kernel of the forward pass writes: the
  weights, and the step's inputs (positions, slots, block tables, sequence lengths), which are in place
  before its first kernel (the copies and torch kernels that prepare them never signal, so the first
  PDL kernel starts after them and every later one after it);
- it signals its dependents only after its own wait, so at most one kernel runs ahead.
Reading those before the wait takes their load latency off the chain of dependent loads that follows it
(session 12).
Waiting means the previous kernel has completed, and that one had waited for its own predecessor, so
every earlier kernel has completed too. A kernel not launched with PDL ignores both instructions, and
one launched with PDL after a kernel that never signals (cuBLAS, torch) starts when that kernel ends.

``PAGEDLLM_PDL=0`` turns it off (the A/B switch of ``benchmarks/gpu/session9_*``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

try:
    import triton
    import triton.language as tl

    _HAVE_TRITON = True
except ImportError:  # CPU installs without triton
    _HAVE_TRITON = False


def enabled(device: torch.device) -> bool:
    """Whether kernels on ``device`` launch with PDL: CUDA, compute capability 9.0+, not the interpreter."""
    if device.type != "cuda" or not _HAVE_TRITON:
        return False
    index = device.index if device.index is not None else torch.cuda.current_device()
    return _enabled_on(index)


@functools.cache
def _enabled_on(index: int) -> bool:
    if os.environ.get("PAGEDLLM_PDL", "1") == "0" or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return False
    return hopper_or_later(index)


@functools.cache
def hopper_or_later(index: int | None) -> bool:
    """Whether CUDA device ``index`` (None: the current one) has compute capability 9.0 or more: PDL, and
    the TMA descriptors the prefill attention and the decode linears load tiles through."""
    return torch.cuda.get_device_capability(index)[0] >= 9


def kernel_args(use_pdl: bool) -> dict[str, Any]:
    """A kernel's ``USE_PDL`` constant and the launch option that goes with it, as one set of keywords,
    so that a kernel waits exactly when it is launched with PDL."""
    return {"USE_PDL": True, "launch_pdl": True} if use_pdl else {"USE_PDL": False}


if _HAVE_TRITON:

    @triton.jit
    def wait_then_release(USE_PDL: tl.constexpr):
        """Wait for the previous kernel's writes, then let the next kernel's programs start."""
        if USE_PDL:
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
