"""``pagedllm bench serve`` against a real server: every request completes with exactly the asked
lengths, and the report has the latency statistics ``vllm bench serve`` prints."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys

import pytest
from server_harness import API_KEY, REPO_ROOT

from pagedllm.bench.serve import arrival_delays


def approx(value: float):
    return pytest.approx(value, rel=0.1)


def test_gamma_arrivals_have_mean_interval_one_over_rate_and_burstiness_widens_them():
    poisson = arrival_delays(4000, rate=4.0, burstiness=1.0, seed=0)
    bursty = arrival_delays(4000, rate=4.0, burstiness=0.25, seed=0)
    assert statistics.fmean(poisson) == approx(0.25)
    assert statistics.fmean(bursty) == approx(0.25)
    # Coefficient of variation of a gamma(k) interval: 1 / sqrt(k).
    assert statistics.stdev(poisson) / statistics.fmean(poisson) == approx(1.0)
    assert statistics.stdev(bursty) / statistics.fmean(bursty) == approx(2.0)
    assert arrival_delays(3, rate=math.inf, burstiness=1.0, seed=0) == [0.0, 0.0, 0.0]


def test_bench_serve_cli_completes_every_request_and_writes_its_report(server, tmp_path):
    result_file = tmp_path / "serve.json"
    command = [
        sys.executable, "-m", "pagedllm.cli", "bench", "serve", "--base-url", server.base_url,
        "--api-key", API_KEY, "--num-prompts", "6", "--input-len", "20", "--output-len", "4",
        "--request-rate", "inf", "20", "--max-concurrency", "3", "--result-file", str(result_file),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| rate (req/s) |" in done.stdout
    report = json.loads(result_file.read_text())
    assert report["server"]["model"] == "SmolLM2-135M-Instruct"
    assert [run["request_rate"] for run in report["runs"]] == ["inf", 20.0]
    for run in report["runs"]:
        assert (run["completed"], run["failed"]) == (6, 0)
        assert (run["total_input_tokens"], run["total_output_tokens"]) == (120, 24)
        assert run["output_throughput"] == run["total_output_tokens"] / run["duration_s"]
        for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
            stats = run[name]
            assert 0 < stats["median"] <= stats["p99"], (name, stats)
        assert run["ttft_ms"]["p99"] <= run["e2el_ms"]["p99"]
