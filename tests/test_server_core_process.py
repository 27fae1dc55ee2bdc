"""The engine core runs in its own process: when it dies, requests end with a clean error and /health
turns 503; when the API process dies, the core does not linger. Real server processes, real kills."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from server_harness import ServerProcess, start_server, stream_events, wait_for_metric

SMALL = ("--dtype", "float32", "--max-model-len", "512", "--kv-cache-memory-bytes", str(64 << 20))


def core_pid(server: ServerProcess) -> int:
    match = re.search(r"engine core: pid (\d+)", server.log_path.read_text(errors="replace"))
    assert match, server.log()
    return int(match.group(1))


def is_gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as exited)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_a_killed_engine_core_ends_requests_with_an_error_and_health_turns_503():
    server = start_server(*SMALL)
    url = server.base_url
    body = {"prompt": "Count slowly", "max_tokens": 400, "ignore_eos": True, "temperature": 0.0}
    streamed: list = []
    results: dict[str, httpx.Response] = {}

    def post() -> None:
        results["whole"] = httpx.post(f"{url}/v1/completions", json=body, timeout=120)

    threads = [
        threading.Thread(target=stream_events, args=(url, body, streamed)),
        threading.Thread(target=post),
    ]
    try:
        for thread in threads:
            thread.start()
        wait_for_metric(url, "vllm:num_requests_running", lambda running: running >= 2, timeout=60)
        pid = core_pid(server)
        os.kill(pid, signal.SIGKILL)
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive(), "a client hung after the engine core died"
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 503 and "engine core process died" in health.json()["error"]["message"]
        refused = httpx.post(f"{url}/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=10)
        assert refused.status_code == 500 and refused.json()["error"]["code"] == "engine_dead"
        # The API process itself still shuts down cleanly.
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    whole = results["whole"]
    assert whole.status_code == 500 and whole.json()["error"]["code"] == "engine_dead", whole.text
    assert streamed[0] == ("status", 200), streamed[:2]
    data = [item for kind, item in streamed if kind == "data"]
    assert data[-1] == "[DONE]" and data[-2]["error"]["code"] == "engine_dead", data[-3:]
    assert any("choices" in event for event in data[:-2]), "tokens streamed before the kill"


@pytest.mark.slow
def test_the_engine_core_exits_when_the_api_process_is_killed():
    server = start_server(*SMALL)
    pid = core_pid(server)
    assert not is_gone(pid)
    server.process.kill()
    server.process.wait()
    deadline = time.monotonic() + 30
    while not is_gone(pid):
        assert time.monotonic() < deadline, "the engine core outlived its API process"
        time.sleep(0.1)
