"""Session 31: where the host's time goes inside the 1B workload's decode steps, without a profiler.

Session 30's step trace showed the decode steps' ``launch_ahead`` phase at 2.0-2.9 ms a step and
``process`` at 0.55-0.77 ms, against ~3.2 ms of GPU time for a 256-row step: the host is the bound.
cProfile inflates small calls, so this wraps the engine's parts with ``perf_counter`` timers instead
(about a microsecond per call, against the milliseconds measured) and runs the workload shape
256 x (512 in, 128 out) ``--repeats`` times in one process, printing each part's mean time per call
in the steps launched ahead, and a fixed pure-Python loop's time as a gauge of the host's speed.

``python3 session31_launch_breakdown.py MODEL.json OUT.json --repeats 4``
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

from pagedllm.bench.throughput import WARMUP_SEED, run_pagedllm
from pagedllm.bench.workload import random_workload
from pagedllm.core.scheduler import Scheduler
from pagedllm.engine.llm_engine import LLMEngine
from pagedllm.llm import LLM
from pagedllm.worker.cuda_graphs import DecodeGraphs

try:
    from pagedllm.worker.decode_inputs import DecodeInputPacker
except ImportError:  # a tree from before session 31

    class DecodeInputPacker:  # type: ignore[no-redef]
        pass


from pagedllm.worker.model_runner import ModelRunner
from pagedllm.worker.sampler import Sampler

TOTALS: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)
ENABLED = [False]


def timed(owner: type, name: str, label: str, only_ahead: bool = False) -> None:
    original = getattr(owner, name, None)
    if original is None:
        return  # a part this tree does not have

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if not ENABLED[0] or (only_ahead and (len(args) < 3 or args[2] is None)):
            return original(*args, **kwargs)
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TOTALS[label] += time.perf_counter() - start
            COUNTS[label] += 1

    setattr(owner, name, wrapper)


def python_gauge() -> float:
    """Milliseconds for a fixed pure-Python loop: the host's speed in this process."""
    start = time.perf_counter()
    total = 0
    items = [object() for _ in range(256)]
    for _ in range(2000):
        seen = {}
        for i, item in enumerate(items):
            seen[id(item)] = i
            total += len(seen)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    for owner, name, label in [
        (Scheduler, "schedule_ahead", "scheduler.schedule_ahead"),
        (Scheduler, "update_from_output", "scheduler.update_from_output"),
        (ModelRunner, "_update_states", "runner._update_states"),
        (ModelRunner, "_previous_tokens", "runner._previous_tokens"),
        (ModelRunner, "_sampling_batch", "runner._sampling_batch"),
        (ModelRunner, "collect", "runner.collect"),
        (DecodeGraphs, "run", "graphs.run"),
        (DecodeGraphs, "can_run", "graphs.can_run"),
        (DecodeGraphs, "argmax_of_last_run", "graphs.argmax_of_last_run"),
        (DecodeInputPacker, "pack", "packer.pack"),
        (torch.cuda.CUDAGraph, "replay", "graph.replay"),
        (Sampler, "sample", "sampler.sample"),
        (LLMEngine, "_process", "engine._process"),
    ]:
        timed(owner, name, label)
    timed(ModelRunner, "launch", "runner.launch (ahead)", only_ahead=True)
    llm = LLM(model=args.model, load_format="dummy", max_model_len=2048)
    vocab = llm.engine.arch.vocab_size
    run_pagedllm(llm, random_workload(256, "512", "128", vocab, seed=WARMUP_SEED), 1, 8)
    runs = []
    for repeat in range(args.repeats):
        gauge = python_gauge()
        TOTALS.clear()
        COUNTS.clear()
        ENABLED[0] = True
        result = run_pagedllm(llm, random_workload(256, "512", "128", vocab, seed=200 + repeat), 1, 0)
        ENABLED[0] = False
        parts = {
            k: {"calls": COUNTS[k], "us_per_call": round(TOTALS[k] / COUNTS[k] * 1e6, 1)} for k in TOTALS
        }
        runs.append(
            {
                "seconds": result["seconds"],
                "output_tokens_per_s": result["output_tokens_per_s"],
                "python_gauge_ms": round(gauge, 2),
                "parts": parts,
            }
        )
        print(f"run {repeat}: {result['output_tokens_per_s']:.0f} tok/s, gauge {gauge:.1f} ms", flush=True)
        for k, v in sorted(parts.items()):
            print(f"  {k:32s} {v['calls']:5d} calls {v['us_per_call']:9.1f} us", flush=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
