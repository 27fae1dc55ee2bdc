"""A bounded load test against a running ``pagedllm serve``: many concurrent streaming clients, some of
them hanging up mid-stream; every other one must get exactly its unloaded greedy output, no 5xx, and at
idle every KV block and swap slot must be free again (read from /metrics).

Used small in the test suite (tests/test_server_load.py) and at full scale by benchmarks/load_test.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

# A prompt as text, or as token ids (a model without a tokenizer, e.g. dummy weights, takes only ids).
Prompt = str | list[int]
# What a request generated: its text and, from a model without a tokenizer, its token ids.
Generated = tuple[str, list[int]]

DEFAULT_PROMPTS: list[Prompt] = [
    f"Tell me a story about a {who} who wants to {what}."
    for who in ("cat", "robot", "wizard", "pirate", "farmer", "dragon", "teacher", "sailor")
    for what in ("fly", "sing", "cook")
]


@dataclass
class LoadReport:
    num_clients: int
    num_requests: int
    num_disconnects: int  # clients that hung up mid-stream on purpose
    num_completed: int
    num_mismatched: int  # completed with output other than the unloaded greedy output
    num_failed: int  # HTTP errors, error events, transport errors (disconnects excluded)
    num_5xx: int
    preemptions_recompute: int
    preemptions_swap: int
    blocks_leaked: int  # KV blocks not free once the server is idle
    swap_slots_leaked: int
    wall_s: float
    latency_p50_s: float
    latency_p99_s: float
    ttft_p99_s: float
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_token_prompts(
    num_prompts: int, min_len: int, max_len: int, vocab_size: int, seed: int = 0
) -> list[Prompt]:
    """Prompts of random token ids with lengths spread evenly over [min_len, max_len]."""
    rng = random.Random(seed)
    lengths = [min_len + (max_len - min_len) * i // max(1, num_prompts - 1) for i in range(num_prompts)]
    return [[rng.randrange(vocab_size) for _ in range(length)] for length in lengths]


def read_metrics(client: httpx.Client, base_url: str) -> dict[str, float]:
    """Samples of /metrics by name (labels other than model_name folded into the name as name{k=v})."""
    text = client.get(f"{base_url}/metrics", timeout=30.0).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "model_name")
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def _body(prompt: Prompt, max_tokens: int, stream: bool) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": stream,
    }


def unloaded_outputs(
    base_url: str, prompts: Sequence[Prompt], max_tokens: int, headers: dict[str, str]
) -> list[Generated]:
    """Each prompt's greedy output, one request at a time (nothing else running: no preemption)."""
    with httpx.Client(headers=headers, timeout=300.0) as client:
        outputs = []
        for prompt in prompts:
            response = client.post(f"{base_url}/v1/completions", json=_body(prompt, max_tokens, False))
            response.raise_for_status()
            choice = response.json()["choices"][0]
            outputs.append((choice["text"], choice.get("token_ids", [])))
        return outputs


@dataclass
class _Result:
    status: int | None = None
    text: str = ""
    token_ids: list[int] = field(default_factory=list)  # from a model without a tokenizer
    error: str | None = None
    disconnected: bool = False
    latency: float | None = None
    ttft: float | None = None


async def _client(
    http: httpx.AsyncClient, base_url: str, prompt: Prompt, max_tokens: int, hang_up_after: int | None
) -> _Result:
    result = _Result()
    start = time.monotonic()
    try:
        async with http.stream(
            "POST", f"{base_url}/v1/completions", json=_body(prompt, max_tokens, True)
        ) as resp:
            result.status = resp.status_code
            if resp.status_code != 200:
                result.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
                return result
            num_chunks = 0
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    result.error = f"error event: {event['error']}"
                    return result
                if result.ttft is None:
                    result.ttft = time.monotonic() - start
                for choice in event["choices"]:
                    result.text += choice["text"]
                    result.token_ids += choice.get("token_ids", [])
                num_chunks += 1
                if hang_up_after is not None and num_chunks >= hang_up_after:
                    result.disconnected = True
                    return result  # leaving the `async with` closes the connection mid-stream
            result.latency = time.monotonic() - start
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        result.error = f"{type(e).__name__}: {e}"
    return result


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run_clients(
    base_url: str,
    prompts: Sequence[Prompt],
    num_clients: int,
    max_tokens: int,
    disconnect_fraction: float,
    headers: dict[str, str],
    seed: int,
) -> tuple[list[int], list[_Result]]:
    rng = random.Random(seed)
    num_disconnects = round(num_clients * disconnect_fraction)
    hang_ups = set(rng.sample(range(num_clients), num_disconnects))
    prompt_index = [i % len(prompts) for i in range(num_clients)]
    limits = httpx.Limits(max_connections=num_clients + 8, max_keepalive_connections=num_clients + 8)
    timeout = httpx.Timeout(600.0, connect=60.0)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as http:
        tasks = [
            _client(
                http,
                base_url,
                prompts[prompt_index[i]],
                max_tokens,
                rng.randint(1, max(1, max_tokens // 2)) if i in hang_ups else None,
            )
            for i in range(num_clients)
        ]
        return prompt_index, list(await asyncio.gather(*tasks))


def wait_idle(client: httpx.Client, base_url: str, timeout: float = 60.0) -> dict[str, float]:
    """/metrics once nothing runs, waits or is swapped (raises on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = read_metrics(client, base_url)
        busy = sum(
            samples[name]
            for name in (
                "vllm:num_requests_running",
                "vllm:num_requests_waiting",
                "vllm:num_requests_swapped",
            )
        )
        if busy == 0:
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server is not idle after {timeout} s: {samples}")
        time.sleep(0.1)


def run_load_test(
    base_url: str,
    num_clients: int,
    max_tokens: int = 32,
    disconnect_fraction: float = 0.1,
    prompts: Sequence[Prompt] | None = None,
    api_key: str | None = None,
    seed: int = 0,
) -> LoadReport:
    prompts = prompts or DEFAULT_PROMPTS
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    references = unloaded_outputs(base_url, prompts, max_tokens, headers)
    with httpx.Client(headers=headers) as client:
        before = wait_idle(client, base_url)
        start = time.monotonic()
        prompt_index, results = asyncio.run(
            _run_clients(base_url, prompts, num_clients, max_tokens, disconnect_fraction, headers, seed)
        )
        wall = time.monotonic() - start
        after = wait_idle(client, base_url)
    failures: list[str] = []
    num_completed = num_mismatched = num_failed = num_5xx = 0
    for i, result in enumerate(results):
        if result.status is not None and result.status >= 500:
            num_5xx += 1
        if result.disconnected:
            continue
        if result.error is not None:
            num_failed += 1
            failures.append(f"client {i}: {result.error}")
        elif (result.text, result.token_ids) != references[prompt_index[i]]:
            num_mismatched += 1
            got = (result.text, result.token_ids)
            failures.append(f"client {i}: got {got!r}, unloaded {references[prompt_index[i]]!r}")
        else:
            num_completed += 1
    latencies = [r.latency for r in results if r.latency is not None]
    ttfts = [r.ttft for r in results if r.ttft is not None and not r.disconnected]

    def delta(name: str) -> int:
        return int(after[name] - before[name])

    return LoadReport(
        num_clients=num_clients,
        num_requests=len(results),
        num_disconnects=sum(r.disconnected for r in results),
        num_completed=num_completed,
        num_mismatched=num_mismatched,
        num_failed=num_failed,
        num_5xx=num_5xx,
        preemptions_recompute=delta("pagedllm:preemptions_total{mode=recompute}"),
        preemptions_swap=delta("pagedllm:preemptions_total{mode=swap}"),
        blocks_leaked=int(after["pagedllm:kv_cache_blocks"] - after["pagedllm:kv_cache_free_blocks"]),
        swap_slots_leaked=int(after["pagedllm:swap_space_blocks"] - after["pagedllm:swap_space_free_blocks"]),
        wall_s=wall,
        latency_p50_s=_percentile(latencies, 0.5),
        latency_p99_s=_percentile(latencies, 0.99),
        ttft_p99_s=_percentile(ttfts, 0.99),
        failures=failures[:20],
    )
