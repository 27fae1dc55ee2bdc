"""The official ``openai`` client, unchanged, against a real ``pagedllm serve`` process (SmolLM2)."""

from __future__ import annotations

import httpx
import openai
import pytest
from server_harness import API_KEY, MODEL_NAME

PROMPT = "The capital of France is"
GREEDY = {"temperature": 0.0}


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def _stream_texts(stream) -> tuple[dict[int, str], dict[int, str | None], object]:
    """Reassemble a completions or chat stream: text and finish reason per choice, and the usage."""
    texts: dict[int, str] = {}
    reasons: dict[int, str | None] = {}
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            piece = choice.text if hasattr(choice, "text") else (choice.delta.content or "")
            texts[choice.index] = texts.get(choice.index, "") + piece
            if choice.finish_reason is not None:
                reasons[choice.index] = choice.finish_reason
    return texts, reasons, usage


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL_NAME]


def test_completion_usage_counts_match_tokenize_and_max_tokens(client, server):
    response = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=7, **GREEDY)
    (choice,) = response.choices
    assert choice.text and choice.finish_reason == "length"
    count = httpx.post(f"{server.base_url}/tokenize", json={"prompt": PROMPT}).json()["count"]
    assert response.usage.prompt_tokens == count
    assert response.usage.completion_tokens == 7
    assert response.usage.total_tokens == count + 7


def test_streamed_completion_reassembles_to_the_non_streamed_text(client):
    kwargs = {"model": MODEL_NAME, "prompt": PROMPT, "max_tokens": 24, **GREEDY}
    whole = client.completions.create(**kwargs)
    texts, reasons, usage = _stream_texts(
        client.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    )
    assert texts == {0: whole.choices[0].text}
    assert reasons == {0: whole.choices[0].finish_reason}
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_streamed_chat_reassembles_to_the_non_streamed_message(client):
    kwargs = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 24,
        **GREEDY,
    }
    whole = client.chat.completions.create(**kwargs)
    assert whole.choices[0].message.role == "assistant"
    assert "Paris" in whole.choices[0].message.content
    texts, reasons, usage = _stream_texts(
        client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    )
    assert texts == {0: whole.choices[0].message.content}
    assert reasons == {0: whole.choices[0].finish_reason}
    assert usage.total_tokens == whole.usage.total_tokens


def test_chat_prompt_tokens_are_the_chat_template_tokens(client, server):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    response = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=2, **GREEDY)
    tokenized = httpx.post(f"{server.base_url}/tokenize", json={"messages": messages}).json()
    assert response.usage.prompt_tokens == tokenized["count"]
    prompt = httpx.post(f"{server.base_url}/detokenize", json={"tokens": tokenized["tokens"]}).json()[
        "prompt"
    ]
    assert "<|im_start|>system\nBe brief.<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")


def test_n2_seeded_gives_two_choices_and_streams_the_same_two(client):
    kwargs = {
        "model": MODEL_NAME,
        "prompt": "Once upon a time",
        "max_tokens": 10,
        "n": 2,
        "temperature": 1.0,
        "seed": 1234,
        "extra_body": {"ignore_eos": True},
    }
    whole = client.completions.create(**kwargs)
    assert sorted(c.index for c in whole.choices) == [0, 1]
    assert whole.usage.completion_tokens == 20
    # A seeded request draws from its own generator (branch i: seed + i), whatever the batch.
    texts, reasons, _ = _stream_texts(client.completions.create(**kwargs, stream=True))
    assert texts == {c.index: c.text for c in whole.choices}
    assert reasons == {0: "length", 1: "length"}


def test_completion_logprobs_cover_every_token_with_top_alternatives(client):
    response = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=6, logprobs=3, **GREEDY)
    (choice,) = response.choices
    logprobs = choice.logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == 6
    assert "".join(logprobs.tokens) == choice.text
    for sampled, lp, top in zip(logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True):
        assert lp <= 0.0 and 3 <= len(top) <= 4
        assert lp == pytest.approx(max(top.values()))  # greedy: the sampled token is the most likely
        assert top[sampled] == lp


def test_chat_logprobs_list_top_logprobs_with_the_greedy_token_first(client):
    response = client.chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=5,
        logprobs=True,
        top_logprobs=2,
        **GREEDY,
    )
    content = response.choices[0].logprobs.content
    assert len(content) == response.usage.completion_tokens
    for entry in content:
        assert len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob


def test_stop_string_cuts_the_text_before_it_streamed_or_not(client):
    kwargs = {"model": MODEL_NAME, "prompt": PROMPT, "max_tokens": 24, **GREEDY}
    full = client.completions.create(**kwargs).choices[0].text
    stop = full.split()[2]  # a word from the middle of the greedy text
    expected = full[: full.index(stop)]
    cut = client.completions.create(**kwargs, stop=[stop]).choices[0]
    assert (cut.text, cut.finish_reason) == (expected, "stop")
    texts, reasons, _ = _stream_texts(client.completions.create(**kwargs, stop=stop, stream=True))
    assert (texts[0], reasons[0]) == (expected, "stop")


def test_list_of_prompts_gets_one_choice_per_prompt_in_order(client):
    prompts = [[504, 3458, 282], [1, 2, 3, 4, 5]]  # token ids
    response = client.completions.create(model=MODEL_NAME, prompt=prompts, max_tokens=4, **GREEDY)
    assert [c.index for c in response.choices] == [0, 1]
    for prompt, choice in zip(prompts, response.choices, strict=True):
        alone = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=4, **GREEDY)
        assert choice.text == alone.choices[0].text


def test_repeated_long_prompt_reports_cached_tokens(client):
    prompt = "A long shared system prompt about paged attention and block tables. " * 4  # > 2 blocks
    first = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=1, **GREEDY)
    second = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=1, **GREEDY)
    num_prompt = second.usage.prompt_tokens
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    # Every full block but the one holding the last prompt token comes from the prefix cache.
    assert second.usage.prompt_tokens_details.cached_tokens == (num_prompt - 1) // 16 * 16 > 0
