"""Every invalid request class gets its OpenAI-shaped error, its status code and a readable message,
and never costs another request its answer."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest
from server_harness import API_KEY, metric, read_metrics, start_server, wait_for_metric

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v1/completions",
            {"prompt": "hi", "temperature": -1},
            "temperature must be a finite number >= 0.0",
        ),
        ("/v1/completions", {"prompt": "hi", "top_p": 0}, "top_p must be a finite number in (0.0, 1.0]"),
        ("/v1/completions", {"prompt": "hi", "max_tokens": 0}, "max_tokens must be an int >= 1"),
        ("/v1/completions", {"prompt": "hi", "n": "two"}, "n: Input should be a valid integer"),
        # JSON's own types, as OpenAI takes them: no true for 1, "2" for 2 or "yes" for true
        (
            "/v1/completions",
            {"prompt": "hi", "max_tokens": True},
            "max_tokens: Input should be a valid integer",
        ),
        ("/v1/completions", {"prompt": "hi", "n": "2"}, "n: Input should be a valid integer (got '2')"),
        (
            "/v1/completions",
            {"prompt": "hi", "temperature": True},
            "temperature: Input should be a valid number",
        ),
        ("/v1/completions", {"prompt": "hi", "stream": "yes"}, "stream: Input should be a valid boolean"),
        ("/v1/completions", {"prompt": [1, True]}, "prompt: got [1, True], which is none of"),
        (
            "/v1/completions",
            {"prompt": "hi", "stream_options": {"include_usage": True}},
            "stream_options is only allowed with stream=true",
        ),
        ("/v1/completions", {"max_tokens": 3}, "prompt: Field required"),
        ("/v1/completions", {"prompt": ""}, "prompt is empty"),
        ("/v1/completions", {"prompt": {"text": "hi"}}, "prompt: got {'text': 'hi'}, which is none of str"),
        ("/v1/completions", {"prompt": [1, 2, 10**9]}, "prompt token ids must be integers in [0, 49152)"),
        ("/v1/completions", {"prompt": "hi", "logprobs": 21}, "logprobs must be an int in [0, 20]"),
        ("/v1/completions", {"prompt": "hi", "echo": True}, "echo is not supported"),
        ("/v1/chat/completions", {"messages": []}, "messages: List should have at least 1 item"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]},
            "tool calling is not supported",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2},
            "top_logprobs needs logprobs=true",
        ),
    ],
)
def test_invalid_parameter_is_a_400_naming_the_problem(server, path, body, message):
    error = _error(httpx.post(f"{server.base_url}{path}", json=body, headers=AUTH), 400)
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_malformed_json_is_a_400_not_a_500(server):
    response = httpx.post(
        f"{server.base_url}/v1/completions",
        content=b'{"prompt": "hi", ',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert "not valid JSON" in _error(response, 400)["message"]


def test_prompt_over_max_model_len_states_both_token_counts(server):
    response = httpx.post(
        f"{server.base_url}/v1/completions", json={"prompt": [100] * 600, "max_tokens": 4}, headers=AUTH
    )
    assert "prompt has 600 tokens, but max_model_len is 512" in _error(response, 400)["message"]


def test_a_chosen_max_tokens_past_the_context_is_a_400_and_a_default_is_cut_to_fit(server):
    url = f"{server.base_url}/v1/completions"
    body = {"prompt": [100] * 500, "max_tokens": 13}  # max_model_len 512: room for 12
    error = _error(httpx.post(url, json=body, headers=AUTH), 400)
    assert error["message"] == (
        "max_tokens=13 is too large: the model's context is 512 tokens (max_model_len) and the prompt has "
        "500, which leaves room for 12"
    )
    assert (error["param"], error["code"]) == ("max_tokens", "context_length_exceeded")
    fits = httpx.post(url, json={**body, "max_tokens": 12, "ignore_eos": True}, headers=AUTH, timeout=120)
    assert fits.status_code == 200, fits.text
    assert fits.json()["usage"]["completion_tokens"] == 12
    # Completions' default max_tokens (16) was not the client's choice: cut to the room, not refused.
    default = httpx.post(url, json={"prompt": [100] * 508, "ignore_eos": True}, headers=AUTH, timeout=120)
    assert default.status_code == 200, default.text
    assert default.json()["usage"]["completion_tokens"] == 4
    assert default.json()["choices"][0]["finish_reason"] == "length"

    chat = {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 600}
    error = _error(httpx.post(f"{server.base_url}/v1/chat/completions", json=chat, headers=AUTH), 400)
    assert error["param"] == "max_completion_tokens"
    assert error["message"].startswith("max_completion_tokens=600 is too large")  # the field the client sent


def test_a_long_text_prompt_is_tokenized_off_the_event_loop_as_tokenize_counts_it(server):
    url = server.base_url
    prompt = "The quick brown fox jumps over the lazy dog. " * 400  # 18,000 characters
    counted = httpx.post(f"{url}/tokenize", json={"prompt": prompt}, headers=AUTH).json()["count"]
    response = httpx.post(f"{url}/v1/completions", json={"prompt": prompt, "max_tokens": 1}, headers=AUTH)
    assert f"prompt has {counted} tokens, but max_model_len is 512" in _error(response, 400)["message"]
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 1}
    chat = httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH)
    assert "but max_model_len is 512" in _error(chat, 400)["message"]


def test_openais_no_op_values_of_unsupported_fields_are_accepted(server):
    # Some clients send OpenAI's defaults explicitly; they ask for nothing pagedllm lacks.
    hi = [{"role": "user", "content": "hi"}]
    for extra in ({"response_format": {"type": "text"}}, {"tool_choice": "none"}):
        body = {"messages": hi, "max_tokens": 1, **extra}
        response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
    json_mode = {"messages": hi, "response_format": {"type": "json_object"}}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=json_mode, headers=AUTH)
    assert "response_format" in _error(response, 400)["message"]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([{"type": "text", "text": "Hi"}, {"type": "image_url"}], "only text content parts are supported"),
        ([{"type": "text"}], "a text content part needs 'text', a string; got None"),
        ([{"type": "text", "text": 5}], "a text content part needs 'text', a string; got 5"),
    ],
)
def test_a_content_part_that_is_not_plain_text_is_named(server, parts, message):
    body = {"messages": [{"role": "user", "content": parts}], "max_tokens": 1}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, headers=AUTH)
    assert message in _error(response, 400)["message"]


def test_missing_or_wrong_api_key_is_a_401_and_health_stays_open(server):
    body = {"prompt": "hi", "max_tokens": 1}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        error = _error(httpx.post(f"{server.base_url}/v1/completions", json=body, headers=headers), 401)
        assert "API key" in error["message"] and error["code"] == "invalid_api_key"
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert httpx.get(f"{server.base_url}/health").status_code == 200


def test_unknown_model_or_route_is_a_404(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="the model 'gpt-4' does not exist"):
        client.completions.create(model="gpt-4", prompt="hi", max_tokens=1)
    error = _error(httpx.get(f"{server.base_url}/v1/engines", headers=AUTH), 404)
    assert "no route GET /v1/engines" in error["message"]


@pytest.fixture(scope="module")
def small_queue_server():
    """One request runs at a time; at most one may wait."""
    process = start_server(
        "--dtype", "float32", "--max-num-seqs", "1", "--max-waiting-requests", "1",
        "--max-model-len", "256", "--kv-cache-memory-bytes", str(32 << 20),
    )  # fmt: skip
    yield process
    process.stop()


def test_full_waiting_queue_is_a_503_and_the_queued_requests_still_finish(small_queue_server):
    url = small_queue_server.base_url
    long_body = {"prompt": "Count: 1, 2, 3,", "max_tokens": 80, "ignore_eos": True, "stream": True}
    waiting_result: dict[str, httpx.Response] = {}

    def send_waiting_request() -> None:
        waiting_result["r"] = httpx.post(
            f"{url}/v1/completions", json={"prompt": "Hello", "max_tokens": 2}, timeout=120
        )

    with (
        httpx.Client(timeout=120) as client,
        client.stream("POST", f"{url}/v1/completions", json=long_body) as running,
    ):
        lines = running.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))  # it is running
        waiter = threading.Thread(target=send_waiting_request)
        waiter.start()
        wait_for_metric(url, "vllm:num_requests_waiting", lambda v: v == 1)
        error = _error(client.post(f"{url}/v1/completions", json={"prompt": "Hi", "max_tokens": 2}), 503)
        assert "1 requests are waiting (--max-waiting-requests 1)" in error["message"]
        assert error["code"] == "queue_full"
        rest = list(lines)  # the running request is not disturbed
        assert [line for line in rest if line][-1] == "data: [DONE]"
    waiter.join(timeout=120)
    assert waiting_result["r"].status_code == 200
    assert waiting_result["r"].json()["usage"]["completion_tokens"] == 2
    samples = read_metrics(url)
    assert metric(samples, "vllm:request_success_total", finished_reason="length") == 2


def test_a_request_of_more_prompts_than_may_wait_is_admitted_whole_by_an_idle_server(small_queue_server):
    # Found in review: its own first prompts filled the queue, so it was a 503 on every retry.
    body = {"prompt": ["One", "Two", "Three"], "max_tokens": 2}
    response = httpx.post(f"{small_queue_server.base_url}/v1/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert [choice["index"] for choice in response.json()["choices"]] == [0, 1, 2]
