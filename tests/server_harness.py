"""Start a real ``pagedllm serve`` process on a free localhost port, and read its /metrics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-key"
MODEL_NAME = "SmolLM2-135M-Instruct"


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(*args: str, timeout: float = 120.0) -> ServerProcess:
    """``pagedllm serve`` (this checkout's code) with ``args``; returns once /health answers 200."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="pagedllm-serve-", suffix=".log")[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pagedllm.cli", "serve", "--port", str(port), "--log-level", "warning"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
        )
    server = ServerProcess(process, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"the server did not become healthy in {timeout} s:\n{server.log()}")


def read_metrics(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (sample name, sorted labels other than model_name)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "model_name"))
            samples[(sample.name, labels)] = sample.value
    return samples


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def wait_for_metric(base_url: str, name: str, predicate, timeout: float = 15.0, **labels: str) -> float:
    """Poll /metrics until ``predicate(value)``; returns the value (raises on timeout)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = metric(read_metrics(base_url), name, **labels)
        if predicate(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"{name}{labels or ''} stayed at {value} for {timeout} s")


def stream_events(url: str, body: dict, events: list) -> None:
    """Stream one completion, appending ("status", code), ("data", chunk or "[DONE]") and, if the
    connection fails, ("transport", error) to ``events`` as they happen (run it in a thread)."""
    try:
        with httpx.stream("POST", f"{url}/v1/completions", json={**body, "stream": True}, timeout=120) as r:
            events.append(("status", r.status_code))
            for line in r.iter_lines():
                if line.startswith("data: "):
                    data = line[len("data: ") :]
                    events.append(("data", data if data == "[DONE]" else json.loads(data)))
    except httpx.HTTPError as e:
        events.append(("transport", repr(e)))
