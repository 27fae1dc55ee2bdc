"""``pagedllm bench serve``: an async load generator against an OpenAI-compatible server, like
``vllm bench serve``.

Random dataset: prompts of random token ids (sent as token ids, so the server sees exactly
``--input-len`` tokens) and a fixed output length (``ignore_eos``). Arrivals: a gamma process with mean
interval ``1 / request_rate`` and shape ``burstiness`` (1 = Poisson; lower = burstier); ``inf`` sends
everything at once. ``--max-concurrency`` caps requests in flight. Every request streams, so the client
sees each token's arrival: TTFT (first token), ITL (gap between chunks), TPOT ((E2E - TTFT) / (output
tokens - 1), per request) and E2E.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pagedllm.bench.environment import git_commit

# Token ids drawn for random prompts: ordinary vocabulary entries in every model we serve (SmolLM2 has
# 49,152 ids, Llama 3 128,256), away from the special tokens at the start and end.
DEFAULT_TOKEN_RANGE = (1000, 10000)


@dataclass(slots=True, frozen=True)
class BenchConfig:
    base_url: str
    model: str | None
    num_prompts: int
    input_len: int
    output_len: int
    range_ratio: float = 0.0
    request_rates: tuple[float, ...] = (math.inf,)
    burstiness: float = 1.0
    max_concurrency: int | None = None
    seed: int = 0
    api_key: str | None = None
    ignore_eos: bool = True
    num_warmups: int = 1
    token_range: tuple[int, int] = DEFAULT_TOKEN_RANGE

    def __post_init__(self) -> None:
        for name in ("num_prompts", "input_len", "output_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.range_ratio < 1.0:
            raise ValueError(f"range_ratio must be in [0, 1), got {self.range_ratio}")
        if not self.request_rates or any(not r > 0 for r in self.request_rates):
            raise ValueError(f"request rates must be > 0 (inf = all at once), got {self.request_rates}")
        if not self.burstiness > 0:
            raise ValueError(f"burstiness must be > 0, got {self.burstiness}")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be None or >= 1, got {self.max_concurrency}")
        low, high = self.token_range
        if not 0 <= low < high:
            raise ValueError(f"token_range must be 0 <= low < high, got {self.token_range}")


@dataclass(slots=True, frozen=True)
class BenchRequest:
    prompt_token_ids: list[int]
    output_len: int


@dataclass(slots=True)
class RequestResult:
    prompt_len: int
    success: bool = False
    error: str = ""
    output_tokens: int = 0
    ttft: float = 0.0  # seconds
    latency: float = 0.0  # seconds, send to last byte
    itl: list[float] = field(default_factory=list)  # seconds between streamed chunks


def random_requests(config: BenchConfig, num: int, seed: int) -> list[BenchRequest]:
    rng = random.Random(seed)
    low, high = config.token_range

    def length(mean: int) -> int:
        spread = int(mean * config.range_ratio)
        return max(1, rng.randint(mean - spread, mean + spread))

    requests = []
    for _ in range(num):
        prompt = [rng.randrange(low, high) for _ in range(length(config.input_len))]
        requests.append(BenchRequest(prompt, length(config.output_len)))
    return requests


def arrival_delays(num: int, rate: float, burstiness: float, seed: int) -> list[float]:
    """Seconds to wait before each request: gamma intervals of mean 1/rate (0 for rate=inf)."""
    if math.isinf(rate):
        return [0.0] * num
    rng = random.Random(seed + 1)
    theta = 1.0 / (rate * burstiness)
    return [rng.gammavariate(burstiness, theta) for _ in range(num)]


async def send_request(
    client: httpx.AsyncClient, config: BenchConfig, model: str, request: BenchRequest
) -> RequestResult:
    result = RequestResult(prompt_len=len(request.prompt_token_ids))
    payload = {
        "model": model,
        "prompt": request.prompt_token_ids,
        "max_tokens": request.output_len,
        "temperature": 0.0,
        "ignore_eos": config.ignore_eos,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    last = start
    try:
        async with client.stream("POST", "/v1/completions", json=payload) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")
                result.error = f"HTTP {response.status_code}: {body[:300]}"
                return result
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    result.error = str(chunk["error"].get("message"))
                    return result
                now = time.perf_counter()
                if chunk.get("usage"):
                    result.output_tokens = int(chunk["usage"]["completion_tokens"])
                # A chunk with text, or with token ids only (a server model without a tokenizer).
                if any(c.get("text") or c.get("token_ids") for c in chunk.get("choices", [])):
                    if result.ttft == 0.0:
                        result.ttft = now - start
                    else:
                        result.itl.append(now - last)
                    last = now
        result.latency = time.perf_counter() - start
        result.success = result.ttft > 0.0
        if not result.success:
            result.error = "no token was streamed"
    except (httpx.HTTPError, json.JSONDecodeError, KeyError) as e:
        result.error = f"{type(e).__name__}: {e}"
    return result


async def _run_rate(
    client: httpx.AsyncClient, config: BenchConfig, model: str, requests: Sequence[BenchRequest], rate: float
) -> dict[str, Any]:
    semaphore = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency else None

    async def limited(request: BenchRequest) -> RequestResult:
        if semaphore is None:
            return await send_request(client, config, model, request)
        async with semaphore:
            return await send_request(client, config, model, request)

    tasks = []
    start = time.perf_counter()
    for request, delay in zip(
        requests, arrival_delays(len(requests), rate, config.burstiness, config.seed), strict=True
    ):
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(limited(request)))
    results = await asyncio.gather(*tasks)
    duration = time.perf_counter() - start
    return summarize(results, duration, rate)


def _stats_ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": math.nan, "median": math.nan, "p99": math.nan}
    ordered = sorted(values)

    def percentile(q: float) -> float:
        # Linear interpolation between closest ranks (numpy's default).
        pos = (len(ordered) - 1) * q
        low = math.floor(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return {
        "mean": 1000 * sum(ordered) / len(ordered),
        "median": 1000 * percentile(0.5),
        "p99": 1000 * percentile(0.99),
    }


def summarize(results: Sequence[RequestResult], duration: float, rate: float) -> dict[str, Any]:
    done = [r for r in results if r.success]
    input_tokens = sum(r.prompt_len for r in done)
    output_tokens = sum(r.output_tokens for r in done)
    tpots = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in done if r.output_tokens > 1]
    return {
        "request_rate": "inf" if math.isinf(rate) else rate,
        "duration_s": duration,
        "completed": len(done),
        "failed": len(results) - len(done),
        "errors": sorted({r.error for r in results if not r.success})[:5],
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "request_throughput": len(done) / duration,
        "output_throughput": output_tokens / duration,
        "total_token_throughput": (input_tokens + output_tokens) / duration,
        "ttft_ms": _stats_ms([r.ttft for r in done]),
        "tpot_ms": _stats_ms(tpots),
        "itl_ms": _stats_ms([gap for r in done for gap in r.itl]),
        "e2el_ms": _stats_ms([r.latency for r in done]),
    }


async def _server_model(client: httpx.AsyncClient) -> dict[str, Any]:
    try:
        response = await client.get("/v1/models")
    except httpx.TransportError as e:
        raise ValueError(f"no server answers at {client.base_url} ({type(e).__name__}: {e})") from e
    if response.status_code != 200:
        raise ValueError(f"{client.base_url}v1/models answered {response.status_code}: {response.text[:200]}")
    cards = response.json()["data"]
    if not cards:
        raise ValueError("the server lists no model")
    return dict(cards[0])


async def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Warm up, then one run per request rate; returns the report (the JSON ``bench serve`` writes)."""
    max_connections = max(config.max_concurrency or config.num_prompts, 1) + 4
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    async with httpx.AsyncClient(
        base_url=config.base_url,
        headers=headers,
        timeout=httpx.Timeout(None),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    ) as client:
        card = await _server_model(client)
        model = config.model or str(card["id"])
        # NOTE: fresh prompts for the warm-up and for every rate: a repeated prompt would hit the server's
        # prefix cache and skip its prefill.
        for request in random_requests(config, config.num_warmups, config.seed + 10_000):
            warm = await send_request(client, config, model, request)
            if not warm.success:
                raise RuntimeError(f"warm-up request failed: {warm.error}")
        runs = []
        for i, rate in enumerate(config.request_rates):
            requests = random_requests(config, config.num_prompts, config.seed + i)
            runs.append(await _run_rate(client, config, model, requests, rate))
    return {
        "benchmark": "serve",
        "workload": "serve-poisson",
        **_environment(),
        "server": {"base_url": config.base_url, "model": model, "max_model_len": card.get("max_model_len")},
        "config": {
            **asdict(config),
            "api_key": None,
            "request_rates": ["inf" if math.isinf(r) else r for r in config.request_rates],
        },
        "runs": runs,
    }


def _environment() -> dict[str, Any]:
    return {
        "command": shlex.join(["pagedllm", *sys.argv[1:]]),
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "client_host": {
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"bench serve: {report['server']['model']} at {report['server']['base_url']}",
        "| rate (req/s) | done | req/s | out tok/s | TTFT mean/p50/p99 ms | TPOT mean/p50/p99 ms "
        "| ITL mean/p50/p99 ms | E2E mean/p50/p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def triple(stats: dict[str, float]) -> str:
        return " / ".join(f"{stats[k]:.1f}" for k in ("mean", "median", "p99"))

    for run in report["runs"]:
        lines.append(
            f"| {run['request_rate']} | {run['completed']}/{run['completed'] + run['failed']} "
            f"| {run['request_throughput']:.2f} | {run['output_throughput']:.1f} | {triple(run['ttft_ms'])} "
            f"| {triple(run['tpot_ms'])} | {triple(run['itl_ms'])} | {triple(run['e2el_ms'])} |"
        )
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
