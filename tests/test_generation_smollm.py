"""End-to-end greedy generation with the real SmolLM2-135M-Instruct weights, against transformers."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import NUM_REFERENCE_TOKENS, assert_all_blocks_free
from smollm_reference import REFERENCE_PROMPTS

from pagedllm import LLM, SamplingParams

pytestmark = pytest.mark.slow

# min_tokens blocks EOS the way transformers' min_new_tokens does, so all 64 tokens are compared.
GREEDY_ALL = SamplingParams(temperature=0.0, max_tokens=NUM_REFERENCE_TOKENS, min_tokens=NUM_REFERENCE_TOKENS)


def _token_ids(outputs):
    return [o.outputs[0].token_ids for o in outputs]


def test_prompt_tokenization_matches_transformers(smollm, smollm_reference):
    tokenizer = smollm.get_tokenizer()
    for prompt, ref in zip(REFERENCE_PROMPTS, smollm_reference, strict=True):
        assert tokenizer.encode(prompt) == ref["prompt_token_ids"]
    assert len(smollm_reference[-1]["prompt_token_ids"]) > 500


def test_greedy_batch_is_token_identical_to_transformers(smollm, smollm_reference):
    outputs = smollm.generate(REFERENCE_PROMPTS, GREEDY_ALL, use_tqdm=False)
    for i, (output, ref) in enumerate(zip(outputs, smollm_reference, strict=True)):
        assert output.prompt_token_ids == ref["prompt_token_ids"], f"prompt {i}"
        assert output.outputs[0].token_ids == ref["output_token_ids"], f"prompt {i} diverged"
        assert output.outputs[0].finish_reason == "length"
    assert outputs[0].outputs[0].text.startswith(" Paris")
    assert_all_blocks_free(smollm)


@pytest.mark.parametrize("block_size", [8, 32])
def test_greedy_output_does_not_depend_on_block_size(block_size, smollm_reference):
    llm = LLM(dtype="float32", block_size=block_size)
    outputs = llm.generate(REFERENCE_PROMPTS, GREEDY_ALL, use_tqdm=False)
    assert _token_ids(outputs) == [ref["output_token_ids"] for ref in smollm_reference]
    assert_all_blocks_free(llm)


def test_greedy_output_with_block_size_one(smollm_reference):
    # One token per block makes every context a long gather: a subset of the prompts keeps it quick.
    # min_tokens = max_tokens blocks EOS, so the first 32 tokens are a prefix of the 64 of the reference.
    llm = LLM(dtype="float32", block_size=1)
    params = SamplingParams(temperature=0.0, max_tokens=32, min_tokens=32)
    outputs = llm.generate(REFERENCE_PROMPTS[:4], params, use_tqdm=False)
    assert _token_ids(outputs) == [ref["output_token_ids"][:32] for ref in smollm_reference[:4]]
    assert_all_blocks_free(llm)


def test_greedy_output_with_chunked_prefill_off_and_tiny_chunks(smollm_reference):
    for kwargs in ({"enable_chunked_prefill": False}, {"max_num_batched_tokens": 40, "max_model_len": 1024}):
        llm = LLM(dtype="float32", **kwargs)
        outputs = llm.generate(REFERENCE_PROMPTS, GREEDY_ALL, use_tqdm=False)
        assert _token_ids(outputs) == [ref["output_token_ids"] for ref in smollm_reference], kwargs
        assert_all_blocks_free(llm)


def test_greedy_output_survives_forced_preemption(smollm_reference):
    # 48 blocks of 16 = 768 slots: the 10 prompts need ~1,800 slots at their full length, so running
    # requests are preempted and recomputed again and again.
    llm = LLM(dtype="float32", kv_cache_memory_bytes=48 * 16 * 46080, max_model_len=768)
    outputs = llm.generate(REFERENCE_PROMPTS, GREEDY_ALL, use_tqdm=False)
    assert llm.kv_cache_stats()["num_preemptions"] > 0
    assert _token_ids(outputs) == [ref["output_token_ids"] for ref in smollm_reference]
    assert_all_blocks_free(llm)


def test_each_prompt_alone_equals_thirty_two_together(smollm):
    prompts = [
        f"Fact number {i}: the most interesting thing about {topic} is"
        for i, topic in enumerate(["bees", "stars", "rivers", "glass"] * 8)
    ]
    params = SamplingParams(temperature=0.0, max_tokens=12)
    together = smollm.generate(prompts, params, use_tqdm=False)
    alone = [smollm.generate(p, params, use_tqdm=False)[0] for p in prompts]
    assert _token_ids(together) == _token_ids(alone)
    assert [o.outputs[0].text for o in together] == [o.outputs[0].text for o in alone]
    assert_all_blocks_free(smollm)


def test_seeded_sampling_is_the_same_alone_and_inside_a_mixed_batch(smollm):
    seeded = SamplingParams(temperature=0.9, top_p=0.95, seed=1234, max_tokens=24)
    prompt = "A short poem about autumn:"
    alone = smollm.generate(prompt, seeded, use_tqdm=False)[0].outputs[0].token_ids
    others = ["Hello", "The weather today", "Numbers: 1, 2, 3,", "Dear diary,"]
    mixed_prompts = [*others[:2], prompt, *others[2:]]
    mixed_params = (
        [SamplingParams(temperature=1.0, max_tokens=30)] * 2
        + [seeded]
        + [SamplingParams(temperature=0.0, max_tokens=10)] * 2
    )
    mixed = smollm.generate(mixed_prompts, mixed_params, use_tqdm=False)
    assert mixed[2].outputs[0].token_ids == alone
    unseeded = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=24)
    assert smollm.generate(prompt, unseeded, use_tqdm=False)[0].outputs[0].token_ids != alone
    assert_all_blocks_free(smollm)


def test_chat_applies_the_template_and_answers(smollm):
    output = smollm.chat(
        [{"role": "user", "content": "What is the capital of France?"}],
        SamplingParams(temperature=0.0, max_tokens=20),
        use_tqdm=False,
    )[0]
    assert output.prompt.startswith("<|im_start|>system\n")
    assert output.prompt.endswith("<|im_start|>assistant\n")
    assert "Paris" in output.outputs[0].text


def test_chat_takes_content_parts_and_names_the_conversation_it_refuses(smollm):
    greedy = SamplingParams(temperature=0.0, max_tokens=12)
    question = "What is the capital of France?"
    as_string = smollm.chat([{"role": "user", "content": question}], greedy, use_tqdm=False)[0]
    as_parts = smollm.chat(
        [{"role": "user", "content": [{"type": "text", "text": question}]}], greedy, use_tqdm=False
    )[0]
    assert as_parts.prompt_token_ids == as_string.prompt_token_ids
    assert as_parts.outputs[0].token_ids == as_string.outputs[0].token_ids
    conversations = [[{"role": "user", "content": question}], [{"role": "user", "content": 42}]]
    with pytest.raises(ValueError, match="conversation 1: message 0: content must be a string"):
        smollm.chat(conversations, greedy, use_tqdm=False)
    assert not smollm.engine.has_unfinished_requests()


def test_stop_string_ends_the_request_and_is_cut_from_the_text(smollm):
    prompt = "Count from one to ten in words: one, two,"
    free_run = smollm.generate(prompt, SamplingParams(temperature=0.0, max_tokens=30), use_tqdm=False)[0]
    text = free_run.outputs[0].text
    assert smollm.get_tokenizer().decode(free_run.outputs[0].token_ids) == text
    stop = "five"
    assert stop in text, text
    stopped = smollm.generate(
        prompt, SamplingParams(temperature=0.0, max_tokens=30, stop=[stop]), use_tqdm=False
    )[0]
    completion = stopped.outputs[0]
    assert completion.text == text[: text.index(stop)]
    assert (completion.finish_reason, completion.stop_reason) == ("stop", stop)
    assert len(completion.token_ids) < len(free_run.outputs[0].token_ids)
    # The same stop string completed by the last token max_tokens allows: still "stop" (vLLM's rule),
    # not "length", since the text was cut there.
    at_the_limit = smollm.generate(
        prompt,
        SamplingParams(temperature=0.0, max_tokens=len(completion.token_ids), stop=[stop]),
        use_tqdm=False,
    )[0].outputs[0]
    assert (at_the_limit.text, at_the_limit.finish_reason, at_the_limit.stop_reason) == (
        completion.text,
        "stop",
        stop,
    )
    kept = smollm.generate(
        prompt,
        SamplingParams(temperature=0.0, max_tokens=30, stop=[stop], include_stop_str_in_output=True),
        use_tqdm=False,
    )[0]
    assert kept.outputs[0].text == text[: text.index(stop) + len(stop)]
    assert_all_blocks_free(smollm)


def test_a_stop_string_ends_nothing_before_min_tokens(smollm):
    prompt = "Count from one to ten in words: one, two,"
    free_run = smollm.generate(prompt, SamplingParams(temperature=0.0, max_tokens=30), use_tqdm=False)[0]
    early = smollm.generate(
        prompt, SamplingParams(temperature=0.0, max_tokens=30, stop=[","]), use_tqdm=False
    )[0].outputs[0]
    assert len(early.token_ids) < 6  # the first comma comes within the first few tokens
    held = smollm.generate(
        prompt, SamplingParams(temperature=0.0, max_tokens=30, stop=[","], min_tokens=6), use_tqdm=False
    )[0].outputs[0]
    assert len(held.token_ids) >= 6
    assert (held.finish_reason, held.stop_reason) == ("stop", ",")
    assert free_run.outputs[0].text.startswith(held.text + ",")
    assert held.text.count(",") > early.text.count(",")


def test_stop_token_ids_and_eos_finish_with_stop(smollm):
    free_run = smollm.generate(
        "The capital of France is", SamplingParams(temperature=0.0, max_tokens=30), use_tqdm=False
    )
    completion = free_run[0].outputs[0]
    assert completion.finish_reason == "stop" and completion.token_ids[-1] == 2  # EOS, reason None
    assert completion.stop_reason is None
    third = completion.token_ids[2]
    params = SamplingParams(temperature=0.0, max_tokens=30, stop_token_ids=[third])
    stopped = smollm.generate("The capital of France is", params, use_tqdm=False)[0].outputs[0]
    assert stopped.token_ids == completion.token_ids[:3]
    assert (stopped.finish_reason, stopped.stop_reason) == ("stop", third)
    # The stop token's text is not output unless asked for, as in vLLM; EOS's neither.
    tokenizer = smollm.get_tokenizer()
    assert stopped.text == tokenizer.decode(completion.token_ids[:2])
    kept = dataclasses.replace(params, include_stop_str_in_output=True)
    assert smollm.generate("The capital of France is", kept, use_tqdm=False)[0].outputs[0].text == (
        tokenizer.decode(completion.token_ids[:3])
    )
    special = SamplingParams(temperature=0.0, max_tokens=30, skip_special_tokens=False)
    with_specials = smollm.generate("The capital of France is", special, use_tqdm=False)[0].outputs[0]
    assert with_specials.token_ids == completion.token_ids
    assert with_specials.text == completion.text  # no "<|im_end|>" at its end


def test_logprobs_report_the_sampled_token_first_then_the_top_k(smollm):
    params = SamplingParams(temperature=0.0, max_tokens=6, logprobs=3, ignore_eos=True)
    completion = smollm.generate("The capital of France is", params, use_tqdm=False)[0].outputs[0]
    assert len(completion.logprobs) == 6
    total = 0.0
    for token_id, entry in zip(completion.token_ids, completion.logprobs, strict=True):
        assert next(iter(entry)) == token_id
        assert entry[token_id].rank == 1  # greedy picks the most likely token
        assert 3 <= len(entry) <= 4
        assert sorted(lp.rank for lp in entry.values()) == sorted({1, 2, 3} | {entry[token_id].rank})
        assert all(lp.logprob <= 0 for lp in entry.values())
        total += entry[token_id].logprob
    assert completion.cumulative_logprob == pytest.approx(total)
    assert completion.logprobs[0][completion.token_ids[0]].decoded_token == " Paris"


def test_min_tokens_keeps_generating_past_eos(smollm):
    params = SamplingParams(temperature=0.0, max_tokens=20, min_tokens=15)
    completion = smollm.generate("The capital of France is", params, use_tqdm=False)[0].outputs[0]
    assert len(completion.token_ids) >= 15
    assert 2 not in completion.token_ids[:15]
