"""Fuzzing a real server: schemathesis generates requests from its OpenAPI schema, hypothesis generates
hostile prompts and bodies (random unicode, control characters, lone surrogates, huge strings, token ids
out of range, deep or malformed JSON). No answer may be a 5xx, every error must be OpenAI-shaped, and the
server must still give the same greedy answer afterwards."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import start_server

NUM_CASES = {"schema": 0, "prompts": 0}
# FUZZ_SCALE=10 multiplies every example count (a longer campaign than CI's, for docs/RELIABILITY.md).
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
PROBE = {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0.0}


@pytest.fixture(scope="module")
def fuzz_server():
    # Small limits keep every generated request cheap: at most 4 tokens, 2 branches, short prompts.
    server = start_server(
        "--dtype", "float32", "--max-model-len", "256", "--kv-cache-memory-bytes", str(32 << 20),
        "--max-n", "2", "--max-tokens-limit", "4", "--max-prompt-tokens", "64",
        "--max-request-body-bytes", str(1 << 20),
    )  # fmt: skip
    probe = httpx.post(f"{server.base_url}/v1/completions", json=PROBE, timeout=60)
    assert probe.status_code == 200, probe.text
    server.probe_text = probe.json()["choices"][0]["text"]  # type: ignore[attr-defined]
    yield server
    try:
        # Whatever the fuzzers sent, the server still answers, and the same way.
        after = httpx.post(f"{server.base_url}/v1/completions", json=PROBE, timeout=60)
        assert after.status_code == 200, after.text
        assert after.json()["choices"][0]["text"] == server.probe_text  # type: ignore[attr-defined]
        assert server.process.poll() is None
        print(f"\nfuzz cases sent: {NUM_CASES}")
    finally:
        server.stop()


def check_answer(status: int, body: bytes) -> None:
    assert status < 500, f"{status}: {body[:500]!r}"
    if status >= 400:
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str) and error["message"], error


@pytest.mark.slow
def test_schema_fuzzing_never_gets_a_5xx_or_a_malformed_error(fuzz_server):
    # NOTE: schemathesis' pytest plugin does not load under this pytest; its strategies drive hypothesis
    # directly instead, one operation (route and method) of the OpenAPI schema at a time.
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/completions", "/v1/chat/completions", "/tokenize"}
    for operation in operations:
        _fuzz_operation(operation, fuzz_server.base_url)


def _fuzz_operation(operation, base_url: str) -> None:
    @settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def call(case) -> None:
        NUM_CASES["schema"] += 1
        response = case.call(base_url=base_url, timeout=60)
        check_answer(response.status_code, response.content)
        # ... and the answer is one the schema promises: a documented status, a body that fits it.
        assert str(response.status_code) in operation.definition.raw["responses"], response.text
        operation.validate_response(response)

    call()


# -- hypothesis: hostile prompts and bodies --------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(min_size=0, max_size=200),  # any unicode, control characters included
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cs"]), max_size=50),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(1000, 300_000)),  # huge
)
TOKEN_IDS = st.lists(
    st.one_of(st.integers(-(2**70), 2**70), st.integers(0, 49151), st.floats(), st.booleans()),
    min_size=0,
    max_size=40,
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _raw_json(value: object) -> bytes:
    # allow_nan: NaN/Infinity are not JSON, but a client may send them anyway.
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def _post(server, path: str, content: bytes, content_type: str = "application/json") -> None:
    NUM_CASES["prompts"] += 1
    response = httpx.post(
        f"{server.base_url}{path}", content=content, headers={"content-type": content_type}, timeout=60
    )
    check_answer(response.status_code, response.content)


@pytest.mark.slow
@settings(max_examples=120 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    prompt=st.one_of(HOSTILE_TEXT, TOKEN_IDS, st.lists(HOSTILE_TEXT, max_size=3), JSON_VALUE),
    extra=st.dictionaries(
        st.sampled_from(
            ["n", "max_tokens", "stop", "logprobs", "temperature", "seed", "stream", "stop_token_ids"]
        ),
        JSON_VALUE,
        max_size=3,
    ),
    path=st.sampled_from(["/v1/completions", "/tokenize"]),
)
def test_hostile_prompts_never_get_a_5xx(fuzz_server, prompt, extra, path):
    _post(fuzz_server, path, _raw_json({"prompt": prompt, "max_tokens": 2, **extra}))


@pytest.mark.slow
@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(content=st.one_of(HOSTILE_TEXT, JSON_VALUE), role=st.one_of(st.just("user"), HOSTILE_TEXT))
def test_hostile_chat_messages_never_get_a_5xx(fuzz_server, content, role):
    body = {"messages": [{"role": role, "content": content}], "max_tokens": 2}
    _post(fuzz_server, "/v1/chat/completions", _raw_json(body))


@pytest.mark.slow
@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    raw=st.one_of(
        st.binary(max_size=300),  # not JSON, not even UTF-8
        st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),  # deeply nested
        st.integers(1, 200_000).map(lambda depth: b'{"prompt":' + b"[" * depth),  # truncated
        JSON_VALUE.map(_raw_json),  # valid JSON of the wrong shape
    ),
    path=st.sampled_from(["/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
)
def test_malformed_bodies_never_get_a_5xx(fuzz_server, raw, path, content_type):
    _post(fuzz_server, path, raw, content_type)


def test_a_lone_surrogate_is_a_value_error_not_a_tokenizer_type_error():
    # Found by the fuzzer: JSON carries "\ud800" fine, and the tokenizer raised TypeError (a 500).
    from pagedllm.model.default_model import default_model_path
    from pagedllm.tokenizer.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(default_model_path())
    with pytest.raises(ValueError, match="lone surrogate"):
        tokenizer.encode("ok \ud800 no")
    assert tokenizer.encode("ok") == tokenizer.encode("ok")
