"""Admission limits (clear 400s and 413s), graceful shutdown on SIGTERM, idle keep-alive connections, and a
bounded load test with preemption and disconnects, each against a real ``pagedllm serve`` process."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import httpx
import pytest
from server_harness import metric, read_metrics, start_server, stream_events, wait_for_metric

from pagedllm.bench.load_test import run_load_test
from pagedllm.server.limits import RequestLimits

BYTES_PER_BLOCK = 2 * 30 * 3 * 64 * 4 * 16  # SmolLM2-135M, float32, 16-token blocks


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.fixture(scope="module")
def limited_server():
    server = start_server(
        "--dtype", "float32", "--max-model-len", "256", "--kv-cache-memory-bytes", str(64 << 20),
        "--max-n", "2", "--max-tokens-limit", "8", "--max-prompt-tokens", "40", "--max-stop-strings", "2",
        "--max-stop-string-length", "5", "--max-prompts-per-request", "2", "--max-request-body-bytes", "4096",
    )  # fmt: skip
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "param", "flag"),
    [
        ({"prompt": "hi", "n": 3}, "n", "--max-n"),
        ({"prompt": "hi", "max_tokens": 9}, "max_tokens", "--max-tokens-limit"),
        ({"prompt": "hi " * 60}, "prompt", "--max-prompt-tokens"),
        ({"prompt": "hi", "max_tokens": 9, "n": 2}, "max_tokens", "--max-tokens-limit"),
        # Found by the fuzzer (a 500): an unset max_tokens capped below min_tokens.
        ({"prompt": "hi", "min_tokens": 9}, "min_tokens", "--max-tokens-limit"),
        ({"prompt": "hi", "stop": ["a", "b", "c"]}, "stop", "--max-stop-strings"),
        ({"prompt": "hi", "stop": "abcdef"}, "stop", "--max-stop-string-length"),
        ({"prompt": ["a", "b", "c"]}, "prompt", "--max-prompts-per-request"),
    ],
)
def test_a_request_over_a_limit_is_a_400_naming_the_flag(limited_server, body, param, flag):
    response = httpx.post(f"{limited_server.base_url}/v1/completions", json=body, timeout=30)
    error = _error(response, 400)
    assert error["param"] == param and flag in error["message"], error


@pytest.mark.slow
def test_limits_cap_an_unset_max_tokens_and_oversized_bodies_are_a_413(limited_server):
    url = limited_server.base_url
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Count to fifty"}], "ignore_eos": True},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 8  # max_tokens unset: the server's cap
    error = _error(httpx.post(f"{url}/v1/completions", json={"prompt": "x" * 5000}, timeout=30), 413)
    assert "--max-request-body-bytes" in error["message"]
    # The completions default (16) is capped too, not refused; an explicit 2 is kept.
    capped = httpx.post(f"{url}/v1/completions", json={"prompt": "Hello", "ignore_eos": True}, timeout=60)
    assert capped.status_code == 200 and capped.json()["usage"]["completion_tokens"] == 8
    ok = httpx.post(f"{url}/v1/completions", json={"prompt": "Hello", "max_tokens": 2}, timeout=60)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2


@pytest.mark.slow
def test_a_chunked_body_without_content_length_is_held_to_the_same_limit(limited_server):
    url = f"{limited_server.base_url}/v1/completions"

    def chunked(body: bytes):  # a generator body: httpx sends it chunked, with no Content-Length
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    headers = {"Content-Type": "application/json"}
    big = json.dumps({"prompt": "x" * 5000}).encode()
    error = _error(httpx.post(url, content=chunked(big), headers=headers, timeout=30), 413)
    assert "--max-request-body-bytes" in error["message"]
    small = json.dumps({"prompt": "Hello", "max_tokens": 2}).encode()
    response = httpx.post(url, content=chunked(small), headers=headers, timeout=60)
    assert response.status_code == 200, response.text  # under the limit, replayed to the route whole
    assert response.json()["usage"]["completion_tokens"] == 2


@pytest.mark.slow
def test_the_openapi_schema_lists_the_errors_the_server_answers_not_fastapis_422(limited_server):
    schema = httpx.get(f"{limited_server.base_url}/openapi.json", timeout=30).json()
    completions = schema["paths"]["/v1/completions"]["post"]["responses"]
    assert "422" not in json.dumps(schema["paths"])
    assert {"200", "400", "401", "404", "413", "503"} <= set(completions)
    assert completions["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    # The 400 the server really sends for a wrong type fits the advertised body.
    error = _error(httpx.post(f"{limited_server.base_url}/v1/completions", json={"prompt": 3.5}), 400)
    required = schema["components"]["schemas"]["ErrorResponse"]["properties"]["error"]["required"]
    assert set(required) == set(error)
    assert {"401", "503"}.isdisjoint(schema["paths"]["/tokenize"]["post"]["responses"])  # not under /v1


def test_request_limits_validate_their_values():
    with pytest.raises(ValueError, match="max_n must be an integer >= 1"):
        RequestLimits(max_n=0)
    assert RequestLimits(max_tokens=None).max_tokens is None


# -- graceful shutdown ---------------------------------------------------------------------------


def _stream(url: str, body: dict, events: list, done: threading.Event) -> None:
    try:
        stream_events(url, body, events)
    finally:
        done.set()


@pytest.mark.slow
def test_sigterm_drains_finishes_short_requests_and_aborts_the_rest_cleanly():
    # The drain is long enough for the short request on a loaded 2-core machine (3 s was not: with a
    # review's processes sharing the cores it ended unfinished, with a 503, three times in a row), and far
    # too short for the long ones (1,500 tokens each).
    drain_s = 8
    server = start_server(
        "--dtype", "float32", "--max-model-len", "2048", "--shutdown-timeout", str(drain_s)
    )  # fmt: skip
    url = server.base_url
    long_body = {"prompt": "Count slowly", "max_tokens": 1500, "ignore_eos": True, "temperature": 0.0}
    short_body = {"prompt": "Hello", "max_tokens": 8, "ignore_eos": True, "temperature": 0.0}
    streamed: list = []
    streamed_done = threading.Event()
    results: dict[str, httpx.Response | str] = {}

    def post(name: str, body: dict) -> None:
        try:
            results[name] = httpx.post(f"{url}/v1/completions", json=body, timeout=120)
        except httpx.HTTPError as e:
            results[name] = repr(e)

    threads = [
        threading.Thread(target=_stream, args=(url, long_body, streamed, streamed_done)),
        threading.Thread(target=post, args=("long", long_body)),
    ]
    try:
        for thread in threads:
            thread.start()
        wait_for_metric(url, "vllm:num_requests_running", lambda running: running >= 2, timeout=60)
        short = threading.Thread(target=post, args=("short", short_body))
        short.start()
        # The short request is running when the signal comes (a fixed 0.3 s sleep does not promise that on
        # a loaded machine).
        deadline = time.monotonic() + 60
        while "short" not in results and metric(read_metrics(url), "vllm:num_requests_running") < 3:
            assert time.monotonic() < deadline, "the short request was never admitted"
            time.sleep(0.02)
        signaled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # Draining: a new request is refused with a 503 it can act on, and /health says so too.
        refused = httpx.post(f"{url}/v1/completions", json=short_body, timeout=30)
        assert _error(refused, 503)["code"] == "server_shutting_down"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 503
        short.join(60)
        for thread in threads:
            thread.join(60)
        assert streamed_done.wait(60), "the streaming client hung"
        assert server.process.wait(timeout=30) == 0
        exited = time.monotonic() - signaled
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert exited < drain_s + 10, f"shutdown took {exited:.1f} s with a {drain_s} s drain"
    # The short request finished normally during the drain.
    short_response = results["short"]
    assert isinstance(short_response, httpx.Response) and short_response.status_code == 200, (
        short_response.text
    )
    assert short_response.json()["usage"]["completion_tokens"] == 8
    # The long non-streamed one got a 503 error body, not a hang or a dropped connection.
    long_response = results["long"]
    assert isinstance(long_response, httpx.Response), long_response
    assert _error(long_response, 503)["code"] == "server_shutting_down"
    # The long streamed one got some tokens, then an error event, then [DONE].
    assert streamed[0] == ("status", 200), streamed[:2]
    data = [item for kind, item in streamed if kind == "data"]
    assert data[-1] == "[DONE]", streamed[-3:]
    assert data[-2]["error"]["code"] == "server_shutting_down", data[-2]
    assert any("choices" in event for event in data[:-2]), "tokens streamed before the abort"


# -- idle connections ------------------------------------------------------------------------------


def _read_response(conn: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length; b"" if the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lengths = [
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    ]
    assert lengths, f"no Content-Length in {head!r}"
    length = lengths[0]
    while len(body) < length:
        body += conn.recv(4096)
    return head + b"\r\n\r\n" + body


@pytest.mark.slow
def test_an_idle_connection_stays_open_longer_than_a_client_pool_keeps_it(server):
    # A client reuses a pooled connection until its own keep-alive expiry (httpx: 5 s). Were the server
    # to close idle connections as soon (uvicorn's default: 5 s), a request sent on one just as it closes
    # would be lost (a ReadError in the client).
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        for attempt in range(2):
            if attempt:
                time.sleep(client_expiry + 1.0)
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            response = _read_response(conn)
            assert response.startswith(b"HTTP/1.1 200"), (attempt, response[:200])


# -- load ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_with_preemption_and_disconnects_loses_nothing():
    # 24 blocks for 48 clients of ~12 + 24 tokens: preemption by recompute (short) and swap (long).
    server = start_server(
        "--dtype", "float32", "--max-model-len", "128",
        "--kv-cache-memory-bytes", str(24 * BYTES_PER_BLOCK),
        "--swap-space", str(32 * BYTES_PER_BLOCK / 2**30), "--swap-threshold-tokens", "16",
    )  # fmt: skip
    try:
        prompts = [
            f"Tell me a story about a {who}." for who in ("cat", "robot", "wizard", "pirate", "dragon")
        ]
        report = run_load_test(server.base_url, num_clients=48, max_tokens=24, prompts=prompts)
    finally:
        server.stop()
    assert report.num_disconnects == 5
    assert report.failures == [] and report.num_5xx == 0
    assert report.num_completed == 48 - 5
    assert report.preemptions_recompute > 0 and report.preemptions_swap > 0, report
    assert report.blocks_leaked == 0 and report.swap_slots_leaked == 0
