"""kv_policy="contiguous" in the whole engine, on a tiny random Llama: same greedy tokens as paging, fewer
requests admitted at once, and the per-step KV report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import assert_all_blocks_free
from model_harness import build_hf_model, save_hf_model

from pagedllm import LLM, SamplingParams

BLOCK_SIZE = 4
MAX_MODEL_LEN = 64  # a reservation is 16 blocks
NUM_BLOCKS = 96  # 6 reservations; paging fits all 8 sequences below
GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


def bytes_for_blocks(path: Path, num_blocks: int, block_size: int) -> int:
    import json

    cfg = json.loads((path / "config.json").read_text())
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    per_block = 2 * cfg["num_hidden_layers"] * block_size * cfg["num_key_value_heads"] * head_dim * 4
    return num_blocks * per_block


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return save_hf_model(build_hf_model("LlamaForCausalLM"), tmp_path_factory.mktemp("tiny-llama"))


def tiny_llm(path: Path, kv_policy: str, num_blocks: int = NUM_BLOCKS, **options: object) -> LLM:
    return LLM(
        str(path),
        dtype="float32",
        block_size=BLOCK_SIZE,
        max_model_len=MAX_MODEL_LEN,
        kv_cache_memory_bytes=bytes_for_blocks(path, num_blocks, BLOCK_SIZE),
        kv_policy=kv_policy,
        record_kv_stats=True,
        **options,  # type: ignore[arg-type]
    )


def prompts(num: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1, 256) for _ in range(rng.randint(1, 40))] for _ in range(num)]


def test_contiguous_gives_the_same_greedy_tokens_as_paged_while_admitting_fewer(tiny_llama):
    batch = prompts(8)
    results = {}
    for policy in ("paged", "contiguous"):
        llm = tiny_llm(tiny_llama, policy)
        outputs = llm.generate(batch, GREEDY, use_tqdm=False)
        assert_all_blocks_free(llm)
        results[policy] = (
            [o.outputs[0].token_ids for o in outputs],
            llm.kv_stats_report(include_steps=False),
        )
    (paged_tokens, paged), (contiguous_tokens, contiguous) = results["paged"], results["contiguous"]
    assert contiguous_tokens == paged_tokens
    assert paged["summary"]["peak_running"] == 8
    assert contiguous["summary"]["peak_running"] == NUM_BLOCKS // (MAX_MODEL_LEN // BLOCK_SIZE) == 6
    assert contiguous["summary"]["num_steps"] > paged["summary"]["num_steps"]
    assert contiguous["config"]["kv_policy"] == "contiguous"
    assert contiguous["summary"]["utilization_time_avg"] < 0.6 < paged["summary"]["utilization_time_avg"]


def test_contiguous_stats_report_the_reservation(tiny_llama):
    # Synchronous: one step() then runs the step (async scheduling, a GPU's default, only launches it).
    llm = tiny_llm(tiny_llama, "contiguous", async_scheduling=False)
    engine = llm.engine
    engine.add_request("r", [5, 6, 7, 8, 9], SamplingParams(max_tokens=4))
    engine.step()
    stats = llm.kv_cache_stats()
    assert stats["num_allocated_slots"] == MAX_MODEL_LEN
    assert stats["num_tokens_stored"] == 5
    assert stats["num_reservation_waste_slots"] == MAX_MODEL_LEN - 5
    assert stats["reservation_waste"] == pytest.approx((MAX_MODEL_LEN - 5) / MAX_MODEL_LEN)
    engine.abort_request("r")
    assert_all_blocks_free(llm)


def test_contiguous_refuses_parallel_sampling(tiny_llama):
    llm = tiny_llm(tiny_llama, "contiguous")
    with pytest.raises(ValueError, match="kv_policy='paged'"):
        llm.generate([[1, 2, 3]], SamplingParams(n=2, max_tokens=2), use_tqdm=False)


def test_kv_policy_is_validated():
    with pytest.raises(ValueError, match="kv_policy"):
        LLM(kv_policy="virtual")


def test_kv_stats_report_needs_recording(tiny_llama):
    llm = LLM(str(tiny_llama), dtype="float32", max_model_len=MAX_MODEL_LEN)
    with pytest.raises(ValueError, match="record_kv_stats"):
        llm.kv_stats_report()
    llm.engine.start_kv_stats()
    llm.generate([[1, 2, 3]], SamplingParams(max_tokens=3), use_tqdm=False)
    report = llm.kv_stats_report()
    assert report["source"] == "engine" and report["summary"]["num_steps"] == 3
    assert report["steps"]["num_token_slots"] == [3, 4, 5]


@pytest.mark.parametrize("kv_policy", ["paged", "contiguous"])
def test_kv_stats_with_a_step_scheduled_ahead_are_the_synchronous_runs(tiny_llama, kv_policy):
    # Found in review: under async scheduling each step was sampled once the next one had been scheduled
    # ahead, so a paged run showed reserved slots (the next step's), which paging never has.
    steps = {}
    for mode in (False, True):
        llm = tiny_llm(tiny_llama, kv_policy, async_scheduling=mode)
        llm.generate(prompts(6, seed=1), GREEDY, use_tqdm=False)
        report = llm.kv_stats_report(include_steps=True)
        if mode:
            assert llm.engine.num_steps_scheduled_ahead > 0
        steps[mode] = {key: values for key, values in report["steps"].items() if key != "time"}
    assert steps[True] == steps[False]
    if kv_policy == "paged":
        assert not any(steps[True]["num_reserved_slots"])
