"""Preemption never changes greedy output: SmolLM2 in float32 on a KV pool too small for the batch, by
recompute and by swapping, against the same prompts run on a pool where nothing is preempted."""

from __future__ import annotations

import pytest
from conftest import assert_all_blocks_free

from pagedllm import LLM, SamplingParams

PROMPTS = [
    f"Write a long story about a {who} who learns to"
    for who in ("cat", "dog", "robot", "wizard", "pirate", "farmer", "teacher", "dragon")
]
BLOCK_SIZE = 16
# SmolLM2-135M in float32: K and V of 30 layers x 3 KV heads x 64 dims x 4 bytes, per token.
BYTES_PER_BLOCK = 2 * 30 * 3 * 64 * 4 * BLOCK_SIZE


@pytest.fixture(scope="module")
def params() -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=48, ignore_eos=True)


@pytest.fixture(scope="module")
def unloaded(smollm: LLM, params: SamplingParams) -> list[list[int]]:
    before = smollm.kv_cache_stats()["num_preemptions"]
    outputs = [o.outputs[0].token_ids for o in smollm.generate(PROMPTS, params, use_tqdm=False)]
    assert smollm.kv_cache_stats()["num_preemptions"] == before, "the reference run must not preempt"
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_greedy_output_is_identical_under_preemption(mode: str, params, unloaded) -> None:
    # 14 blocks (224 slots) for 8 sequences of ~60 tokens: they cannot all stay resident.
    llm = LLM(
        dtype="float32",
        seed=0,
        max_model_len=128,
        kv_cache_memory_bytes=14 * BYTES_PER_BLOCK,
        swap_space=40 * BYTES_PER_BLOCK / 2**30,
        preemption_mode=mode,
    )
    outputs = [o.outputs[0].token_ids for o in llm.generate(PROMPTS, params, use_tqdm=False)]
    stats = llm.kv_cache_stats()
    assert stats["num_preemptions"] > 0, "the pool was meant to force preemption"
    if mode == "swap":
        assert stats["num_swap_preemptions"] == stats["num_preemptions"]
    else:
        assert stats["num_swap_preemptions"] == 0
    assert outputs == unloaded
    assert_all_blocks_free(llm)
    assert stats["num_free_cpu_blocks"] == stats["num_cpu_blocks"] == 40
