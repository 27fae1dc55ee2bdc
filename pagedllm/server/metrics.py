"""``GET /metrics``: Prometheus text format under vLLM's metric names (``vllm:...``), so dashboards and
alerts written for vLLM work unchanged.

Gauges and the engine's cumulative counters (preemptions, prefix-cache queries/hits, the engine core's
own step time) come from the counters the engine core sent with its latest step; token counters and
latency histograms are updated as each request ends.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pagedllm.engine.async_engine import AsyncEngine, RequestTimes

# vLLM's buckets (seconds).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]


class ServerMetrics:
    """One registry per server (not the process-global one), labelled with the served model name."""

    def __init__(self, model_name: str) -> None:
        # NOTE: process-wide: drops the `*_created` timestamp series, which vLLM does not expose either.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        labels = ["model_name"]
        r = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, [*labels, *extra], registry=r)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r)

        self.num_running = gauge("vllm:num_requests_running", "Requests in the running batch.")
        self.num_waiting = gauge("vllm:num_requests_waiting", "Requests waiting to be scheduled.")
        self.num_swapped = gauge("vllm:num_requests_swapped", "Requests swapped to CPU memory.")
        # pagedllm's own: what a leak check or a dashboard of the pool needs (free at idle = all).
        self.num_blocks = gauge("pagedllm:kv_cache_blocks", "Blocks of the KV cache.")
        self.num_free_blocks = gauge("pagedllm:kv_cache_free_blocks", "Free KV cache blocks.")
        self.num_cpu_blocks = gauge("pagedllm:swap_space_blocks", "Blocks of the CPU swap space.")
        self.num_free_cpu_blocks = gauge("pagedllm:swap_space_free_blocks", "Free swap space blocks.")
        self.preemptions_by_mode = counter(
            "pagedllm:preemptions", "Preemptions since start, by mode (recompute, swap).", extra=("mode",)
        )
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV cache usage: used blocks / all blocks (0-1).")
        self.num_preemptions = counter("vllm:num_preemptions", "Preemptions since start.")
        # pagedllm's own: the engine core process's time, to tell a slow core from a slow HTTP side.
        self.core_steps = counter("pagedllm:engine_core_steps", "Steps the engine core ran.")
        self.core_step_seconds = counter(
            "pagedllm:engine_core_step_seconds", "Engine core time inside steps (schedule, model, outputs)."
        )
        self.core_overhead_seconds = counter(
            "pagedllm:engine_core_overhead_seconds",
            "Engine core time outside steps while busy: applying adds and aborts, sending step outputs.",
        )
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries", "Tokens looked up in the prefix cache (queried tokens)."
        )
        self.prefix_hits = counter("vllm:prefix_cache_hits", "Tokens found in the prefix cache.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Prompt tokens of ended requests.")
        self.generation_tokens = counter("vllm:generation_tokens", "Generated tokens of ended requests.")
        self.request_success = counter(
            "vllm:request_success", "Ended requests by finish reason.", extra=("finished_reason",)
        )
        self.ttft = histogram("vllm:time_to_first_token_seconds", "Time to first token.", TTFT_BUCKETS)
        self.tpot = histogram(
            "vllm:time_per_output_token_seconds", "Mean time per output token after the first.", TPOT_BUCKETS
        )
        self.e2e = histogram("vllm:e2e_request_latency_seconds", "Arrival to last token.", E2E_BUCKETS)
        self._model = model_name
        # Expose every series at 0 from the first scrape, before any request ends.
        for metric in (self.prompt_tokens, self.generation_tokens, self.ttft, self.tpot, self.e2e):
            metric.labels(model_name)
        for reason in ("stop", "length", "abort"):
            self.request_success.labels(model_name, reason)
        for metric in (self.num_preemptions, self.prefix_queries, self.prefix_hits):
            metric.labels(model_name)
        for metric in (self.core_steps, self.core_step_seconds, self.core_overhead_seconds):
            metric.labels(model_name)
        for mode in ("recompute", "swap"):
            self.preemptions_by_mode.labels(model_name, mode)
        self._seen: dict[str, float] = {
            "num_steps": 0,
            "step_seconds": 0.0,
            "overhead_seconds": 0.0,
            "num_preemptions": 0,
            "prefix_cache_queries": 0,
            "prefix_cache_hits": 0,
            "num_recompute_preemptions": 0,
            "num_swap_preemptions": 0,
        }

    def on_request_finished(self, times: RequestTimes) -> None:
        m = self._model
        self.prompt_tokens.labels(m).inc(times.num_prompt_tokens)
        self.generation_tokens.labels(m).inc(times.num_generation_tokens)
        self.request_success.labels(m, times.finish_reason or "abort").inc()
        if times.first_token is not None:
            self.ttft.labels(m).observe(times.first_token - times.arrival)
        if times.finished is not None:
            self.e2e.labels(m).observe(times.finished - times.arrival)
            if times.first_token is not None and times.max_sequence_tokens > 1:
                decode_time = times.finished - times.first_token
                self.tpot.labels(m).observe(decode_time / (times.max_sequence_tokens - 1))

    async def render(self, engine: AsyncEngine) -> bytes:
        stats = await engine.stats()
        m = self._model
        self.num_running.labels(m).set(stats["num_running"])
        self.num_waiting.labels(m).set(stats["num_waiting"])
        self.num_swapped.labels(m).set(stats["num_swapped"])
        self.num_blocks.labels(m).set(stats["num_blocks"])
        self.num_free_blocks.labels(m).set(stats["num_free_blocks"])
        self.num_cpu_blocks.labels(m).set(stats["num_cpu_blocks"])
        self.num_free_cpu_blocks.labels(m).set(stats["num_free_cpu_blocks"])
        self.kv_usage.labels(m).set(stats["num_used_blocks"] / stats["num_blocks"])
        for key, child in (
            ("num_preemptions", self.num_preemptions.labels(m)),
            ("prefix_cache_queries", self.prefix_queries.labels(m)),
            ("prefix_cache_hits", self.prefix_hits.labels(m)),
            ("num_recompute_preemptions", self.preemptions_by_mode.labels(m, "recompute")),
            ("num_swap_preemptions", self.preemptions_by_mode.labels(m, "swap")),
            ("num_steps", self.core_steps.labels(m)),
            ("step_seconds", self.core_step_seconds.labels(m)),
            ("overhead_seconds", self.core_overhead_seconds.labels(m)),
        ):
            # The engine keeps running totals; a Prometheus counter only goes up by increments.
            delta = stats[key] - self._seen[key]
            if delta > 0:
                child.inc(delta)
                self._seen[key] += delta
        return generate_latest(self.registry)
