"""Session 19: where a small prefill's time goes, host or GPU, with and without TMA descriptors.

Issue 5's prefill row 1 x 1k (Llama layout, head dim 128, TMA by default) measured 33.8-80.5 us in
session 19's call 4 against SDPA's ~35: ``do_bench`` queues launches back to back, so a launch whose
host path takes longer than its kernel is timed by the host. For each layout and shape this prints:
- gpu_us: the launch replayed from a CUDA graph (kernel time, no host);
- host_us: the host's time to enqueue one call (100 calls queued, no synchronisation between);
- bench_us: ``do_bench``'s median, as the issue's table takes it;
for our kernel through TMA descriptors, through pointers, and torch SDPA. Then a cProfile of 300 calls
of the 1 x 1k Llama launch each way (the host path's parts).

    python3 benchmarks/gpu/session19_prefill_host.py OUT.json
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from pagedllm.attention.triton.prefill import PrefillLaunch
from pagedllm.bench.kernels import graph_ms, make_prefill_case, time_ms

SHAPES = [(1, 256), (1, 512), (1, 1024), (1, 2048), (1, 4096), (4, 1024), (16, 1024)]


def host_us(fn: Callable[[], Any], calls: int = 100) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / calls * 1e6


def cases(heads: str, batch: int, context: int) -> dict[str, Callable[[], Any]]:
    case = make_prefill_case(heads, batch, context, 16, torch.bfloat16, torch.device("cuda"))
    out = torch.empty_like(case.query)
    return {
        "tma": lambda: case.attend(out, PrefillLaunch(tma=True)),
        "pointers": lambda: case.attend(out, PrefillLaunch(tma=False)),
        "sdpa": case.sdpa,
    }


def profile(fn: Callable[[], Any], calls: int = 300) -> str:
    fn()
    torch.cuda.synchronize()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(14)
    return text.getvalue()


def main() -> None:
    rows = []
    for heads in ("llama", "qwen"):
        for batch, context in SHAPES:
            fns = cases(heads, batch, context)
            for name, fn in fns.items():
                fn()
                row = {
                    "heads": heads,
                    "batch": batch,
                    "context": context,
                    "launch": name,
                    "gpu_us": (graph_ms([fn], torch.device("cuda")) or 0.0) * 1e3,
                    "host_us": host_us(fn),
                    "bench_us": time_ms(fn, torch.device("cuda")) * 1e3,
                }
                rows.append(row)
                print(
                    f"{heads:6} {batch:3} x {context:5} {name:9} gpu {row['gpu_us']:8.1f} "
                    f"host {row['host_us']:6.1f} bench {row['bench_us']:8.1f} us",
                    flush=True,
                )
            del fns
            torch.cuda.empty_cache()
    fns = cases("llama", 1, 1024)
    profiles = {name: profile(fns[name]) for name in ("tma", "pointers", "sdpa")}
    for name, text in profiles.items():
        print(f"== cProfile, 300 calls, llama 1 x 1024, {name}\n{text}")
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows, "profiles": profiles}, f, indent=1)


if __name__ == "__main__":
    main()
