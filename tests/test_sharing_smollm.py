"""Sharing KV blocks on the real SmolLM2 weights: prefix caching and parallel sampling change nothing
but memory."""

from __future__ import annotations

import pytest
from conftest import assert_all_blocks_free

from pagedllm import LLM, SamplingParams

pytestmark = pytest.mark.slow

SYSTEM = (
    "<|im_start|>system\nYou are a meticulous assistant. Answer in one short sentence, cite no sources, "
    "and never use lists. If a question is ambiguous, pick the most common reading.<|im_end|>\n"
)
QUESTIONS = [
    "What is the capital of Italy?",
    "Why is the sky blue?",
    "Name a prime number.",
    "Who wrote Hamlet?",
]
GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


@pytest.fixture(scope="module")
def no_cache() -> LLM:
    return LLM(dtype="float32", enable_prefix_caching=False)


def _chat(question: str) -> str:
    return f"{SYSTEM}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def test_prefix_caching_changes_no_greedy_token(smollm, no_cache):
    tokenizer = smollm.get_tokenizer()
    shared_len = len(tokenizer.encode(SYSTEM))
    assert shared_len % 16 != 0, "the shared prefix should end inside a block"
    prompts = [_chat(q) for q in QUESTIONS]
    # A prefix ending inside a block, and a prompt that is a prefix of another one.
    prompts += [SYSTEM + "<|im_start|>user\nHi", SYSTEM + "<|im_start|>user\nHi there, how are you?"]
    expected = [o.outputs[0].token_ids for o in no_cache.generate(prompts, GREEDY, use_tqdm=False)]
    first = smollm.generate(prompts[:1], GREEDY, use_tqdm=False)[0]  # fills the cache
    rest = smollm.generate(prompts[1:], GREEDY, use_tqdm=False)
    assert [first.outputs[0].token_ids] + [o.outputs[0].token_ids for o in rest] == expected
    # Every later request reuses the full blocks of the shared system prompt.
    assert all(o.num_cached_tokens >= shared_len // 16 * 16 for o in rest)
    assert all(o.num_cached_tokens % 16 == 0 and o.num_cached_tokens < len(o.prompt_token_ids) for o in rest)
    stats = smollm.kv_cache_stats()
    assert stats["prefix_cache_hits"] > 0 and stats["prefix_cache_queries"] >= stats["prefix_cache_hits"]
    assert_all_blocks_free(smollm)


def test_parallel_greedy_samples_equal_the_single_sample(smollm):
    prompt = _chat("Describe a cat.")
    single = smollm.generate(prompt, GREEDY, use_tqdm=False)[0].outputs[0]
    four = smollm.generate(prompt, SamplingParams(temperature=0.0, max_tokens=24, n=4), use_tqdm=False)[0]
    assert [c.index for c in four.outputs] == [0, 1, 2, 3]
    assert all(c.token_ids == single.token_ids and c.text == single.text for c in four.outputs)
    assert_all_blocks_free(smollm)


def test_seeded_parallel_samples_are_reproducible_and_distinct(smollm):
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=12, n=4, seed=7)
    first = smollm.generate("Tell me a story about a dragon.", params, use_tqdm=False)[0]
    again = smollm.generate("Tell me a story about a dragon.", params, use_tqdm=False)[0]
    assert [c.token_ids for c in first.outputs] == [c.token_ids for c in again.outputs]
    assert len({tuple(c.token_ids) for c in first.outputs}) > 1
    assert_all_blocks_free(smollm)


def test_parallel_samples_share_the_prompt_blocks(smollm):
    engine = smollm.engine
    prompt = _chat("Write a limerick about the sea.")
    engine.add_request("fork-check", prompt, SamplingParams(temperature=1.0, max_tokens=8, n=3, seed=1))
    engine.step()  # prefill, sample 3 first tokens, fork
    stats = smollm.kv_cache_stats()
    num_prompt_blocks = -(-len(smollm.get_tokenizer().encode(prompt)) // 16)
    assert stats["num_blocks_saved_by_sharing"] == 2 * num_prompt_blocks
    while engine.has_unfinished_requests():
        engine.step()
    engine.scheduler.check_invariants()
    assert_all_blocks_free(smollm)


def test_shared_system_prompt_saves_the_blocks_the_simulator_predicts(smollm):
    """BENCHMARKS.md shared-prefix (200-token system prompt, 10 requests): the real engine holds the
    same number of shared blocks as the simulator replaying the same workload."""
    import random

    from pagedllm.sim.simulator import SimConfig, simulate
    from pagedllm.sim.study import PAGED
    from pagedllm.sim.workloads import shared_prefix

    workload = shared_prefix(10)
    simulated = simulate(workload, PAGED.apply(SimConfig(num_blocks=2048)))
    expected = simulated.summary.peak_blocks_saved_by_sharing
    assert expected == 9 * 12  # 12 full blocks of the 200-token prompt, shared by 9 later requests

    rng = random.Random(0)
    prefix = [rng.randrange(100, 49152) for _ in range(200)]
    engine = smollm.engine
    ids = []
    for i, request in enumerate(workload.requests):
        prompt = prefix + [rng.randrange(100, 49152) for _ in range(request.prompt_len - 200)]
        params = SamplingParams(temperature=0.0, max_tokens=request.output_len, ignore_eos=True)
        engine.add_request(f"shared-prefix-{i}", prompt, params)
        ids.append(f"shared-prefix-{i}")
        if i == 0:
            engine.step()  # the first request computes (and caches) the system prompt
    engine.step()  # the other nine are admitted on the cached prompt blocks
    assert smollm.kv_cache_stats()["num_blocks_saved_by_sharing"] == expected
    engine.abort_request(ids)
    assert_all_blocks_free(smollm)
