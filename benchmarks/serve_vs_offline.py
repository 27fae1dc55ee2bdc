"""Online serving against offline throughput on the same workload, in one run (issue 7's measurement).

1. Starts `pagedllm serve` (this checkout) with the engine options below, runs `pagedllm bench serve`
   at each request rate (random token-id prompts of --input-len, --output-len tokens with EOS ignored,
   streaming), stops the server.
2. Runs offline `LLM.generate` on exactly the prompts of the saturated (`inf`) run, same engine options.
3. Prints the table and the ratio saturated-server / offline output tok/s; writes the JSON.

CPU (SmolLM2, what docs/PERFORMANCE.md reports):
    python benchmarks/serve_vs_offline.py --num-prompts 20 --input-len 64 --output-len 32 \
        --request-rates 0.5 1 2 inf --name serve-cpu-smollm2
GPU (Llama-3.2-1B shape, dummy weights; see benchmarks/serve_gpu.sh for the wheels the image lacks):
    python benchmarks/serve_vs_offline.py --model ../shared/models/llama-3.2-1b.json --load-format dummy \
        --num-prompts 256 --input-len 512 --output-len 128 --request-rates 4 8 16 32 64 inf \
        --name serve-gpu-llama-3.2-1b
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import environment, write_result

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # this checkout's pagedllm, also for the server subprocess
sys.path.insert(0, str(REPO_ROOT / "tests"))

from server_harness import start_server  # noqa: E402
from sharded_client import run_rate_sharded  # noqa: E402

from pagedllm.bench.load_test import read_metrics  # noqa: E402
from pagedllm.bench.serve import BenchConfig, format_table, random_requests, run_benchmark  # noqa: E402


def engine_args(args: argparse.Namespace) -> list[str]:
    out = ["--dtype", args.dtype, "--max-num-seqs", str(args.max_num_seqs)]
    for flag, value in (
        ("--model", args.model),
        ("--load-format", args.load_format),
        ("--max-model-len", args.max_model_len),
        ("--kv-cache-memory-bytes", args.kv_cache_memory_bytes),
        ("--piecewise-graph-max-tokens", args.piecewise_graph_max_tokens),
    ):
        if value is not None:
            out += [flag, str(value)]
    return out


def run_offline(args: argparse.Namespace, config: BenchConfig, inf_index: int) -> dict[str, float]:
    import torch

    from pagedllm import LLM, SamplingParams

    llm = LLM(
        args.model,
        dtype=args.dtype,
        load_format=args.load_format or "auto",
        max_num_seqs=args.max_num_seqs,
        max_model_len=args.max_model_len,
        kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        piecewise_graph_max_tokens=args.piecewise_graph_max_tokens,
    )
    requests = random_requests(config, config.num_prompts, config.seed + inf_index)
    prompts = [r.prompt_token_ids for r in requests]
    params = [SamplingParams(temperature=0.0, max_tokens=r.output_len, ignore_eos=True) for r in requests]
    # A whole warm-up run, as the server gets (see run_rates): the timed run compiles nothing.
    warm = random_requests(config, config.num_prompts, config.seed + 10_000)
    llm.generate([r.prompt_token_ids for r in warm], params, use_tqdm=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    num_out = sum(len(o.outputs[0].token_ids) for o in outputs)
    num_in = sum(len(p) for p in prompts)
    del llm
    gc.collect()
    return {
        "duration_s": elapsed,
        "total_input_tokens": num_in,
        "total_output_tokens": num_out,
        "request_throughput": len(prompts) / elapsed,
        "output_throughput": num_out / elapsed,
        "total_token_throughput": (num_in + num_out) / elapsed,
    }


CORE_COUNTERS = (
    "pagedllm:engine_core_steps_total",
    "pagedllm:engine_core_step_seconds_total",
    "pagedllm:engine_core_overhead_seconds_total",
    # As the API process saw them (its arrival is after HTTP parsing): against the client's TTFT.
    "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count",
)


def core_counters(base_url: str) -> dict[str, float]:
    with httpx.Client() as client:
        samples = read_metrics(client, base_url)
    return {name: samples.get(name, 0.0) for name in CORE_COUNTERS}


def model_name(base_url: str) -> str:
    return str(httpx.get(f"{base_url}/v1/models", timeout=30).json()["data"][0]["id"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), its own threads only."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_rates(config: BenchConfig, base_url: str, api_pid: int, client_processes: int = 1) -> dict[str, Any]:
    """``run_benchmark`` one rate at a time (the prompts of rate i are still seeded by seed + i), with the
    engine core's counters read around each: its steps, the mean step and the share of the run it was
    busy, which tell a slow core from a slow HTTP side."""
    # Warm up once with a whole saturated run (fresh prompts: seed + 20000), then every rate runs without
    # a warm-up of its own; the warm-up's report gives the header (server, environment) the rates' runs
    # go into. NOTE: a whole run, not two requests: on a GPU the first large batches compile Triton
    # kernel variants (seconds each, on a cold cache) that a two-request warm-up never reaches.
    warm = dataclasses.replace(config, request_rates=(math.inf,), seed=config.seed + 20_000)
    report = asyncio.run(run_benchmark(warm))
    report["runs"] = []
    for i, rate in enumerate(config.request_rates):
        one = dataclasses.replace(config, request_rates=(rate,), seed=config.seed + i, num_warmups=0)
        before, api_before = core_counters(base_url), cpu_seconds(api_pid)
        client_before = time.process_time()
        if client_processes > 1:
            requests = random_requests(config, config.num_prompts, config.seed + i)
            run = run_rate_sharded(one, model_name(base_url), requests, rate, client_processes)
        else:
            part = asyncio.run(run_benchmark(one))
            (run,) = part["runs"]
            run["client_cpu_fraction_per_process"] = [
                (time.process_time() - client_before) / run["duration_s"]
            ]
        after, api_after = core_counters(base_url), cpu_seconds(api_pid)
        steps, step_s, overhead_s, ttft_s, num_ttft = (after[k] - before[k] for k in CORE_COUNTERS)
        run["server_ttft_mean_ms"] = 1000 * ttft_s / num_ttft if num_ttft else None
        run["engine_core"] = {
            "num_steps": int(steps),
            "mean_step_ms": 1000 * step_s / steps if steps else None,
            "mean_overhead_ms": 1000 * overhead_s / steps if steps else None,
            # Of the run's wall time (the step that finishes the last request may end after it).
            "busy_fraction": (step_s + overhead_s) / run["duration_s"] if run.get("duration_s") else None,
        }
        # The API process (HTTP, SSE, JSON) on its one thread: near 1.0 means it is the bottleneck.
        run["api_process_cpu_fraction"] = (api_after - api_before) / run["duration_s"]
        report["runs"].append(run)
    report["config"]["request_rates"] = ["inf" if math.isinf(r) else r for r in config.request_rates]
    report["config"].update(
        seed=config.seed, num_prompts=config.num_prompts, client_processes=client_processes
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--load-format", default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--kv-cache-memory-bytes", type=int, default=None)
    parser.add_argument("--piecewise-graph-max-tokens", type=int, default=None, help="0: mixed steps eager")
    parser.add_argument("--num-prompts", type=int, default=20)
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=32)
    parser.add_argument("--request-rates", type=float, nargs="+", default=[0.5, 1.0, 2.0, math.inf])
    parser.add_argument("--burstiness", type=float, default=1.0)
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--no-offline", action="store_true", help="skip the offline peer")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="send each rate from this many client processes (one Python client can be the bottleneck)",
    )
    parser.add_argument(
        "--name", default="serve-cpu-smollm2", help="results file: benchmarks/results/NAME.json"
    )
    args = parser.parse_args()

    server = start_server(*engine_args(args), timeout=900)
    config = BenchConfig(
        base_url=server.base_url,
        model=None,
        num_prompts=args.num_prompts,
        input_len=args.input_len,
        output_len=args.output_len,
        request_rates=tuple(args.request_rates),
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
    )
    try:
        report = run_rates(config, server.base_url, server.process.pid, args.client_processes)
    finally:
        server.stop()
    print(format_table(report))
    for run in report["runs"]:
        core = run["engine_core"]
        print(
            f"rate {run['request_rate']}: engine core {core['num_steps']} steps, "
            f"mean step {core['mean_step_ms'] or 0:.2f} ms + {core['mean_overhead_ms'] or 0:.2f} ms outside "
            f"steps, busy {100 * (core['busy_fraction'] or 0):.0f}% of the run; API process CPU "
            f"{100 * run['api_process_cpu_fraction']:.0f}%, client CPU "
            + "/".join(f"{100 * f:.0f}%" for f in run["client_cpu_fraction_per_process"])
            + f" ({run.get('client_processes', 1)} processes); server-side TTFT mean "
            f"{run['server_ttft_mean_ms'] or 0:.0f} ms"
        )

    offline = None
    saturated = [i for i, r in enumerate(config.request_rates) if math.isinf(r)]
    if saturated and not args.no_offline:
        offline = run_offline(args, config, saturated[0])
        ratio = report["runs"][saturated[0]]["output_throughput"] / offline["output_throughput"]
        offline["server_over_offline_output_throughput"] = ratio
        print(
            f"offline LLM.generate, same {config.num_prompts} prompts: {offline['output_throughput']:.1f} "
            f"output tok/s; saturated server / offline = {ratio:.3f}"
        )
    report.update(environment())
    report["engine_args"] = engine_args(args)
    report["offline_peer"] = offline
    print(write_result(args.name, report))


if __name__ == "__main__":
    main()
