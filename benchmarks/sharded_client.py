"""One request rate of ``bench serve``, sent from several client processes at once.

One Python client (httpx, h11: ~tens of microseconds per SSE chunk) can become the bottleneck when a
fast server streams 256 requests x 1 token every few milliseconds; then the benchmark measures the
client. Here the requests are dealt round-robin to ``num_processes`` forked clients, each running its
share as a Poisson process at ``rate / num_processes`` (the superposition is the same Poisson process
at ``rate``), all starting at the same instant with their connections already open; their results are
summarized together, as ``run_benchmark`` would. Each client's CPU time is reported too, to show
whether the clients kept up.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx

from pagedllm.bench.serve import (
    BenchConfig,
    BenchRequest,
    RequestResult,
    arrival_delays,
    send_request,
    summarize,
)

ShardResult = tuple[list[RequestResult], float, float, float]  # results, start, end, CPU seconds


def _run_shard(
    config: BenchConfig, model: str, requests: Sequence[BenchRequest], rate: float, start_at: float
) -> ShardResult:
    # The parent's heap came with the fork: a full collection walking it would stall this client's sends.
    gc.freeze()
    cpu_start = time.process_time()

    async def run() -> tuple[list[RequestResult], float, float]:
        connections = len(requests) + 4
        async with httpx.AsyncClient(
            base_url=config.base_url,
            timeout=httpx.Timeout(None),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        ) as client:
            # Open the connections before the start, as a long-running client's pool would have them:
            # otherwise TCP and HTTP set-up of a burst of new connections delays the first sends
            # (httpx, ~1 ms per new connection), and the run measures the client's ramp-up.
            await asyncio.gather(*(client.get("/health") for _ in range(len(requests))))
            if time.perf_counter() > start_at:
                print(f"warning: a client shard started {time.perf_counter() - start_at:.2f} s late")
            await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
            start = time.perf_counter()
            tasks = []
            for request, delay in zip(
                requests, arrival_delays(len(requests), rate, config.burstiness, config.seed), strict=True
            ):
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send_request(client, config, model, request)))
            results = await asyncio.gather(*tasks)
            return list(results), start, time.perf_counter()

    results, start, end = asyncio.run(run())
    return results, start, end, time.process_time() - cpu_start


def run_rate_sharded(
    config: BenchConfig, model: str, requests: Sequence[BenchRequest], rate: float, num_processes: int
) -> dict[str, Any]:
    """``summarize`` of one rate sent by ``num_processes`` forked clients (CLOCK_MONOTONIC is shared,
    so their start and end times compare)."""
    shards = [list(requests[i::num_processes]) for i in range(num_processes)]
    start_at = time.perf_counter() + 2.0  # time for every process to fork and open its connections
    shard_rate = rate / num_processes if not math.isinf(rate) else rate
    # NOTE: fork: the parent holds no CUDA and no running event loop here; the shards need no re-import.
    with multiprocessing.get_context("fork").Pool(num_processes) as pool:
        parts: list[ShardResult] = pool.starmap(
            _run_shard,
            [
                (replace(config, seed=config.seed + 1000 * i), model, shard, shard_rate, start_at)
                for i, shard in enumerate(shards)
            ],
        )
    results = [r for part in parts for r in part[0]]
    start = min(part[1] for part in parts)
    end = max(part[2] for part in parts)
    run = summarize(results, end - start, rate)
    run["client_processes"] = num_processes
    run["client_cpu_fraction_per_process"] = [part[3] / (end - start) for part in parts]
    return run
