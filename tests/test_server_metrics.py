"""``/metrics`` parses as Prometheus text, its counters follow finished requests, and a client that
disconnects mid-stream gets its request aborted and its KV blocks freed."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_harness import API_KEY, metric, read_metrics, wait_for_metric

AUTH = {"Authorization": f"Bearer {API_KEY}"}
VLLM_FAMILIES = {
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:num_requests_swapped",
    "vllm:kv_cache_usage_perc",
    "vllm:num_preemptions",
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
    "vllm:request_success",
    "vllm:time_to_first_token_seconds",
    "vllm:time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds",
}


def test_metrics_parse_with_the_prometheus_parser_under_vllm_names(server):
    response = httpx.get(f"{server.base_url}/metrics")  # open, like /health: no key needed
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert set(families) >= VLLM_FAMILIES
    assert families["vllm:prompt_tokens"].type == "counter"
    assert families["vllm:time_to_first_token_seconds"].type == "histogram"
    assert families["vllm:kv_cache_usage_perc"].type == "gauge"


def test_counters_and_histograms_move_by_what_a_finished_request_did(server):
    before = read_metrics(server.base_url)
    prompt = "Prefix caching counts queried and hit tokens per block of sixteen tokens. " * 3
    bodies = [{"prompt": prompt, "max_tokens": 5, "ignore_eos": True}] * 2
    usages = [
        httpx.post(f"{server.base_url}/v1/completions", json=b, headers=AUTH, timeout=60).json()["usage"]
        for b in bodies
    ]
    after = read_metrics(server.base_url)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("vllm:prompt_tokens_total") == sum(u["prompt_tokens"] for u in usages)
    assert delta("vllm:generation_tokens_total") == 10
    assert delta("vllm:request_success_total", finished_reason="length") == 2
    for histogram in (
        "time_to_first_token_seconds",
        "time_per_output_token_seconds",
        "e2e_request_latency_seconds",
    ):
        assert delta(f"vllm:{histogram}_count") == 2
        assert delta(f"vllm:{histogram}_sum") > 0
    assert delta("vllm:prefix_cache_queries_total") >= usages[0]["prompt_tokens"]
    assert delta("vllm:prefix_cache_hits_total") == usages[1]["prompt_tokens_details"]["cached_tokens"] > 0
    assert metric(after, "vllm:num_requests_running") == 0
    assert metric(after, "vllm:kv_cache_usage_perc") == 0


def test_client_disconnect_mid_stream_aborts_the_request_and_frees_its_blocks(server):
    url = server.base_url
    before = read_metrics(url)
    body = {"prompt": "Write a very long story.", "max_tokens": 400, "ignore_eos": True, "stream": True}
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{url}/v1/completions", json=body, headers=AUTH) as r,
    ):
        data_lines = (line for line in r.iter_lines() if line.startswith("data: "))
        for _ in range(3):
            next(data_lines)
        during = read_metrics(url)
        assert metric(during, "vllm:num_requests_running") == 1
        assert metric(during, "vllm:kv_cache_usage_perc") > 0
    # The connection is closed here, with most of the 400 tokens still to come.
    wait_for_metric(url, "vllm:kv_cache_usage_perc", lambda v: v == 0)
    after = read_metrics(url)
    assert metric(after, "vllm:num_requests_running") == 0
    assert metric(after, "vllm:request_success_total", finished_reason="abort") == (
        metric(before, "vllm:request_success_total", finished_reason="abort") + 1
    )
    generated = metric(after, "vllm:generation_tokens_total") - metric(before, "vllm:generation_tokens_total")
    assert 3 <= generated < 400


def test_client_gone_before_a_whole_answer_aborts_the_request_and_frees_its_blocks(server):
    # Found in review: a non-streamed request ran to its last token after its client had gone.
    url = server.base_url
    before = read_metrics(url)
    body = {"prompt": "Write a very long story.", "max_tokens": 400, "ignore_eos": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=2)
    # The client times out and closes its connection with most of the 400 tokens still to come.
    wait_for_metric(url, "vllm:kv_cache_usage_perc", lambda v: v == 0, timeout=30)
    after = read_metrics(url)
    assert metric(after, "vllm:num_requests_running") == 0
    assert metric(after, "vllm:request_success_total", finished_reason="abort") == (
        metric(before, "vllm:request_success_total", finished_reason="abort") + 1
    )
    generated = metric(after, "vllm:generation_tokens_total") - metric(before, "vllm:generation_tokens_total")
    assert generated < 400
