"""Session 23: what a kernel boundary costs a decode step's chain, against a grid-wide barrier inside one
persistent kernel (the question before any whole-layer kernel, issue 6).

Sessions 11-16 found every decode linear ~3-4 us over its bytes' time whatever its size, paid ~6 times
a layer. Part of that is the boundary itself: the launch, PDL's hand-over, the ramp. This probe times
only the synchronisation, with almost no work a phase: PHASES dependent phases on one program per SM,
each phase reading another program's slice of the previous phase's output (double-buffered), so that a
phase that starts early reads stale data and the final check fails. Three forms, CUDA-graph replays:
- ``launches``: one kernel a phase;
- ``launches_pdl``: the same with programmatic dependent launch (as the engine's kernels);
- ``barrier``: one kernel, a grid barrier (an atomic counter and a spin) between phases.
Each graph starts by resetting the input (a copy; ``barrier`` also zeroes its counter): that setup is
timed alone and subtracted before dividing by PHASES.

    python3 benchmarks/gpu/session23_sync_probe.py OUT.json   # on an H100
"""

from __future__ import annotations

import json
import sys

import torch
import triton
import triton.language as tl

from pagedllm.bench.kernels import graph_ms

PHASES = 64
BLOCK = 128
SPIN_LIMIT = 1 << 22  # a broken barrier ends (and fails the check) instead of hanging the GPU


@triton.jit
def _phase(src_ptr, dst_ptr, BLOCK: tl.constexpr, USE_PDL: tl.constexpr):
    if USE_PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    pid = tl.program_id(0)
    nxt = (pid + 1) % tl.num_programs(0)
    x = tl.load(src_ptr + nxt * BLOCK + tl.arange(0, BLOCK))
    tl.store(dst_ptr + pid * BLOCK + tl.arange(0, BLOCK), x + 1)


@triton.jit
def _phases_with_barriers(a_ptr, b_ptr, counter_ptr, phases, BLOCK: tl.constexpr, SPIN_LIMIT: tl.constexpr):
    pid = tl.program_id(0)
    grid = tl.num_programs(0)
    nxt = (pid + 1) % grid
    offs = tl.arange(0, BLOCK)
    for ph in range(phases):
        if ph % 2 == 0:
            x = tl.load(a_ptr + nxt * BLOCK + offs, cache_modifier=".cg")
            tl.store(b_ptr + pid * BLOCK + offs, x + 1)
        else:
            x = tl.load(b_ptr + nxt * BLOCK + offs, cache_modifier=".cg")
            tl.store(a_ptr + pid * BLOCK + offs, x + 1)
        # Every thread's store before the arrival; the release publishes them, the acquire orders the
        # next phase's loads after every other program's stores.
        tl.debug_barrier()
        tl.atomic_add(counter_ptr, 1, sem="release", scope="gpu")
        target = (ph + 1) * grid
        seen = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
        spins = 0
        while (seen < target) & (spins < SPIN_LIMIT):
            seen = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
            spins += 1
        tl.debug_barrier()


def main() -> None:
    device = torch.device("cuda")
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    init = torch.arange(sms, device=device, dtype=torch.float32).repeat_interleave(BLOCK)
    a, b = init.clone(), torch.empty_like(init)
    counter = torch.zeros(1, dtype=torch.int32, device=device)
    # After PHASES phases of x[p] = x_prev[p + 1] + 1 from x = p: ((p + PHASES) mod sms) + PHASES.
    expected = ((torch.arange(sms, device=device) + PHASES) % sms + PHASES).float().repeat_interleave(BLOCK)

    def launches(pdl: bool):
        def run() -> None:
            a.copy_(init)
            for ph in range(PHASES):
                src, dst = (a, b) if ph % 2 == 0 else (b, a)
                extra = {"launch_pdl": True} if pdl else {}
                _phase[(sms,)](src, dst, BLOCK=BLOCK, USE_PDL=pdl, **extra)

        return run

    def barrier() -> None:
        a.copy_(init)
        counter.zero_()
        _phases_with_barriers[(sms,)](a, b, counter, PHASES, BLOCK=BLOCK, SPIN_LIMIT=SPIN_LIMIT)

    def copy_and_memset() -> None:
        a.copy_(init)
        counter.zero_()

    def copy_only() -> None:
        a.copy_(init)

    rows = {}
    for name, fn, base in (
        ("launches", launches(False), copy_only),
        ("launches_pdl", launches(True), copy_only),
        ("barrier", barrier, copy_and_memset),
    ):
        fn()
        torch.cuda.synchronize()
        final = a if PHASES % 2 == 0 else b
        correct = bool(torch.equal(final, expected))
        total = graph_ms([fn], device) * 1e3
        overhead = graph_ms([base], device) * 1e3
        rows[name] = {"us": total, "setup_us": overhead, "per_phase_us": (total - overhead) / PHASES,
                      "correct": correct}  # fmt: skip
        print(name, rows[name], flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "sms": sms, "phases": PHASES, "rows": rows}, f,
                  indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
