"""How fast the memory simulator replays a 10,000-request trace, per KV policy.

Usage: python benchmarks/sim_trace.py [--num-requests 10000] [--kv-memory 16GiB] [--model llama-2-7b]

The trace is ``pagedllm.sim.workloads.synthetic_trace`` (log-normal prompts with median ~180 tokens and
responses with median ~120, Poisson arrivals at 20 requests/s); it is saved beside the result so that
``pagedllm simulate --workload benchmarks/results/sim-trace-10000.csv`` replays exactly the same.
Prints one row per policy (wall and CPU seconds, steps, request-steps per second, the memory summary)
and writes ``benchmarks/results/sim-trace.json``. This is a measurement, not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import time

from common import RESULTS_DIR, environment, write_result

from pagedllm.report.markdown import percent, table
from pagedllm.sim.models import kv_size, load_model_spec, num_blocks_for_memory, parse_memory_size
from pagedllm.sim.simulator import SimConfig, simulate
from pagedllm.sim.study import CONTIGUOUS, PAGED, PAGED_NO_PREFIX_CACHE
from pagedllm.sim.workloads import save_trace, synthetic_trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-requests", type=int, default=10_000)
    parser.add_argument("--request-rate", type=float, default=20.0)
    parser.add_argument("--kv-memory", default="16GiB")
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--max-model-len", type=int, default=2048)
    args = parser.parse_args()

    size = kv_size(load_model_spec(args.model), "auto", 16)
    num_blocks = num_blocks_for_memory(parse_memory_size(args.kv_memory), size.bytes_per_block)
    workload = synthetic_trace(args.num_requests, args.request_rate)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    trace_path = RESULTS_DIR / f"sim-trace-{args.num_requests}.csv"
    save_trace(workload, trace_path)
    base = SimConfig(num_blocks=num_blocks, block_size=16, max_model_len=args.max_model_len)

    rows, results = [], []
    for variant in (PAGED, PAGED_NO_PREFIX_CACHE, CONTIGUOUS):
        wall, cpu = time.perf_counter(), time.process_time()
        run = simulate(workload, variant.apply(base), variant.name)
        summary = run.summary  # inside the timing: the summary is part of a run's cost
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        request_steps = sum(run.recorder.steps_as_columns()["num_running"])
        results.append(
            {
                "variant": variant.name,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "num_steps": summary.num_steps,
                "request_steps": request_steps,
                "summary": summary.as_dict(),
            }
        )
        rows.append(
            [
                variant.name,
                f"{wall:.1f}",
                f"{cpu:.1f}",
                summary.num_steps,
                request_steps,
                f"{request_steps / cpu:,.0f}",
                percent(summary.utilization_time_avg),
                f"{summary.peak_running} / {summary.mean_running:.1f}",
                summary.num_preemptions,
                f"{summary.duration:.0f}",
            ]
        )
    header = [
        "policy",
        "wall s",
        "CPU s",
        "steps",
        "request-steps",
        "request-steps / CPU s",
        "KV util. (time avg)",
        "running peak / mean",
        "preemptions",
        "simulated s",
    ]
    print(
        f"{args.num_requests} requests, {args.model} KV pool {args.kv_memory} = {num_blocks} blocks of 16, "
        f"max_model_len {args.max_model_len}"
    )
    print(table(header, rows))
    path = write_result(
        "sim-trace",
        {
            **environment(),
            "workload": {"trace": trace_path.name, **workload.params},
            "model": size.as_dict(),
            "num_blocks": num_blocks,
            "max_model_len": args.max_model_len,
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
