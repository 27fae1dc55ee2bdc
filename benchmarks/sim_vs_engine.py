"""The simulator against the real engine: SmolLM2-135M (float32, CPU) and the simulator run one workload
under each KV policy; prints their KV memory summaries side by side.

Usage: python benchmarks/sim_vs_engine.py [--num-requests 48] [--plot docs/images/sim-vs-engine.png]

The pool is kept small (128 blocks of 16, max_model_len 512: 4 contiguous reservations) so that both
policies are constrained: paging preempts, reservation queues. Requests use ``ignore_eos``, so each runs
to its ``max_tokens`` in both worlds and the schedules must match step for step.
Writes ``benchmarks/results/sim-vs-engine.json``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common import environment, write_result

from pagedllm import LLM, SamplingParams
from pagedllm.report.markdown import percent, table
from pagedllm.report.plots import plot_step_series
from pagedllm.sim.simulator import SimConfig, simulate
from pagedllm.sim.workloads import SimRequest, Workload

COMPARED = (
    "num_steps",
    "peak_running",
    "num_preemptions",
    "utilization_at_full_length",
    "utilization_time_avg",
    "tail_fragmentation_time_avg",
    "reservation_time_avg",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-requests", type=int, default=48)
    parser.add_argument("--num-blocks", type=int, default=128)
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=None, help="write the per-step utilization picture here")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    lengths = [(rng.randint(8, 128), rng.randint(8, 64)) for _ in range(args.num_requests)]
    workload = Workload("trace", f"smollm2-{args.num_requests}", tuple(SimRequest(p, o) for p, o in lengths))
    rows, results, runs = [], [], []
    for policy in ("paged", "contiguous"):
        # NOTE: the KV pool's bytes per block for SmolLM2 in float32 (30 layers, 3 KV heads of 64).
        llm = LLM(
            dtype="float32",
            kv_policy=policy,
            record_kv_stats=True,
            max_model_len=args.max_model_len,
            kv_cache_memory_bytes=args.num_blocks * 16 * 2 * 30 * 3 * 64 * 4,
        )
        assert llm.engine.scheduler.kv.num_blocks == args.num_blocks
        vocab = llm.engine.arch.vocab_size
        prompts = [[rng.randrange(3, vocab) for _ in range(p)] for p, _ in lengths]
        params = [SamplingParams(temperature=0.0, max_tokens=o, ignore_eos=True) for _, o in lengths]
        start = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        engine_seconds = time.perf_counter() - start
        real = llm.kv_stats_report()
        sim_run = simulate(workload, SimConfig.like(llm.engine.scheduler))
        simulated = sim_run.to_dict()
        runs += [real, simulated]
        results.append(
            {
                "policy": policy,
                "engine_seconds": engine_seconds,
                "simulator_seconds": sim_run.wall_seconds,
                "engine": real["summary"],
                "simulator": simulated["summary"],
                "same_steps": real["steps"]["num_token_slots"] == simulated["steps"]["num_token_slots"],
            }
        )
        for key in COMPARED:
            e, s = real["summary"][key], simulated["summary"][key]
            shown = (percent(e, 2), percent(s, 2)) if isinstance(e, float) else (e, s)
            rows.append([policy, key, *shown])
        rows.append([policy, "wall seconds", f"{engine_seconds:.1f}", f"{sim_run.wall_seconds:.3f}"])
    print(f"{args.num_requests} requests, SmolLM2-135M float32, {args.num_blocks} blocks of 16")
    print(table(["policy", "figure", "engine", "simulator"], rows))
    for result in results:
        print(f"{result['policy']}: per-step token counts identical: {result['same_steps']}")
    if args.plot is not None:
        plot_step_series(
            runs, args.plot, "utilization", "KV utilization per step: SmolLM2 engine vs simulator"
        )
        print(f"wrote {args.plot}")
    path = write_result(
        "sim-vs-engine",
        {
            **environment(),
            "num_requests": args.num_requests,
            "num_blocks": args.num_blocks,
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
