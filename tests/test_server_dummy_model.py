"""A model without a tokenizer (dummy weights of a config.json) behind the server: prompts as token ids,
and streamed chunks that carry the new tokens' ids, so `bench serve` can time them."""

from __future__ import annotations

import json

import httpx
import pytest
from server_harness import start_server

from pagedllm.bench.load_test import random_token_prompts, run_load_test, unloaded_outputs

TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}


@pytest.fixture(scope="module")
def dummy_server(tmp_path_factory):
    config = tmp_path_factory.mktemp("tiny") / "config.json"
    config.write_text(json.dumps(TINY_LLAMA))
    process = start_server("--model", str(config), "--load-format", "dummy", "--dtype", "float32")
    yield process
    process.stop()


def test_streamed_chunks_of_a_tokenizer_less_model_carry_token_ids(dummy_server):
    payload = {
        "prompt": [5, 6, 7, 8],
        "max_tokens": 6,
        "temperature": 0.0,
        "stream": True,
        "ignore_eos": True,
    }
    token_ids: list[int] = []
    url = f"{dummy_server.base_url}/v1/completions"
    with httpx.stream("POST", url, json=payload, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                (choice,) = json.loads(line[len("data: ") :])["choices"]
                assert choice["text"] == ""
                token_ids += choice["token_ids"]
    whole = httpx.post(url, json={**payload, "stream": False}, timeout=60).json()
    assert len(token_ids) == 6 == whole["usage"]["completion_tokens"]
    assert whole["choices"][0]["token_ids"] == token_ids  # greedy: the same ids whole as streamed
    assert all(0 <= t < TINY_LLAMA["vocab_size"] for t in token_ids)


def test_a_text_prompt_to_a_tokenizer_less_model_is_a_clear_400(dummy_server):
    response = httpx.post(f"{dummy_server.base_url}/v1/completions", json={"prompt": "hello"}, timeout=60)
    assert response.status_code == 400
    assert "token ids" in response.json()["error"]["message"]


def test_the_load_test_checks_a_tokenizer_less_model_by_its_token_ids(dummy_server):
    prompts = random_token_prompts(6, 4, 40, TINY_LLAMA["vocab_size"])
    assert [len(p) for p in prompts] == [4, 11, 18, 25, 32, 40]
    # what the clients are compared with: 8 ids per prompt, not an empty text that anything matches
    references = unloaded_outputs(dummy_server.base_url, prompts, 8, headers={})
    assert all(text == "" and len(ids) == 8 for text, ids in references)
    report = run_load_test(dummy_server.base_url, 24, max_tokens=8, prompts=prompts)
    assert report.num_failed == report.num_mismatched == report.num_5xx == 0
    assert report.num_completed + report.num_disconnects == 24
    assert report.blocks_leaked == 0
