"""Session 30: where the host's time goes in the 1B workload's decode steps (cProfile of the engine).

The workload's pure decode steps are host-bound in some processes (session 30, call 3): launching a
256-row step ahead took 1.7-2.5 ms of the host against ~3.2 ms of GPU. This builds the engine as
`bench throughput` does, runs the workload once to warm up, then profiles a second run (another workload
seed) with cProfile and prints the engine's functions by their own and cumulative time.

``python3 session30_host_profile.py MODEL.json OUT.txt``
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
from pathlib import Path

from pagedllm.bench.throughput import run_pagedllm
from pagedllm.bench.workload import random_workload
from pagedllm.llm import LLM


def main() -> None:
    model, out = sys.argv[1], sys.argv[2]
    llm = LLM(model=model, load_format="dummy", max_model_len=2048)
    vocab = llm.engine.arch.vocab_size
    run_pagedllm(llm, random_workload(256, "512", "128", vocab, seed=100), 1, 8)
    profiler = cProfile.Profile()
    profiler.enable()
    result = run_pagedllm(llm, random_workload(256, "512", "128", vocab, seed=101), 1, 0)
    profiler.disable()
    text = io.StringIO()
    text.write(f"profiled run: {result['seconds']:.3f} s, {result['output_tokens_per_s']:.0f} tok/s\n")
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(45)
    stats.sort_stats("cumulative").print_stats(60)
    Path(out).write_text(text.getvalue())
    print(text.getvalue()[:6000])


if __name__ == "__main__":
    main()
