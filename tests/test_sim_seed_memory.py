"""BENCHMARKS.md's seed-memory workload reproduces the published comparison: reserving max_model_len keeps
~24.4% of the KV memory busy (500 / 2048), paging ~98.5% (only the last block's tail, ~7.5 tokens, lost)."""

import random
import statistics

import pytest

from pagedllm.sim.simulator import SimConfig, simulate
from pagedllm.sim.study import (
    CONTIGUOUS,
    PAGED,
    PAGED_NO_PREFIX_CACHE,
    is_sustained,
    largest_batch,
    seed_memory_sweep,
    sustains,
)
from pagedllm.sim.workloads import (
    SEED_MEMORY_BATCH_SIZES,
    seed_memory,
    split_length,
    stratified_uniform_ints,
)

BASE = SimConfig(num_blocks=128, block_size=16, max_model_len=2048)


@pytest.fixture(scope="module")
def sweep():
    runs = seed_memory_sweep(SEED_MEMORY_BATCH_SIZES, [CONTIGUOUS, PAGED], BASE)
    return {(run.workload.params["batch_size"], run.variant): run for run, _ in runs}


@pytest.mark.parametrize("batch_size", SEED_MEMORY_BATCH_SIZES)
def test_reservation_keeps_24_4_percent_and_paging_98_5_percent_at_every_batch_size(sweep, batch_size):
    contiguous = sweep[batch_size, "contiguous"].summary
    paged = sweep[batch_size, "paged"].summary
    assert contiguous.utilization_at_full_length == pytest.approx(0.244, abs=0.015)
    assert paged.utilization_at_full_length == pytest.approx(0.985, abs=0.01)
    # Every request was admitted in the first step and ran to its end, with nobody preempted.
    for summary in (contiguous, paged):
        assert summary.num_finished == summary.peak_running == batch_size
        assert summary.num_preemptions == 0
    # The time average is reported beside it; paging stays high over the whole run.
    assert paged.utilization_time_avg == pytest.approx(0.985, abs=0.01)
    assert contiguous.utilization_time_avg < 0.35


def test_paging_loses_only_the_last_blocks_tail_about_7_5_tokens_per_sequence(sweep):
    run = sweep[200, "paged"]
    tail_tokens = run.summary.tail_fragmentation_at_full_length * run.recorder.num_full_length_slots / 200
    assert tail_tokens == pytest.approx(7.5, abs=1.0)
    assert run.summary.reservation_at_full_length == 0


def test_contiguous_waste_is_the_reservation_beyond_the_tail(sweep):
    summary = sweep[100, "contiguous"].summary
    assert summary.reservation_at_full_length == pytest.approx(1 - 0.244 - 0.0037, abs=0.015)
    assert summary.tail_fragmentation_at_full_length < 0.01


def test_seed_memory_lengths_are_uniform_1_to_999_with_mean_500():
    for batch_size in SEED_MEMORY_BATCH_SIZES:
        lengths = [r.kv_length for r in seed_memory(batch_size).requests]
        assert len(lengths) == batch_size and min(lengths) >= 1 and max(lengths) <= 999
        assert statistics.mean(lengths) == pytest.approx(500, abs=1)
    # Each draw on its own is uniform over the range: pooled over many batches, every tenth is as common.
    counts = [0] * 10
    for seed in range(400):
        for value in stratified_uniform_ints(10, 0, 999, random.Random(seed)):
            counts[value // 100] += 1
    assert max(counts) - min(counts) < 0.1 * statistics.mean(counts)


@pytest.mark.parametrize("length", [1, 2, 3, 500, 999])
def test_a_length_splits_into_a_prompt_and_a_response_that_leave_exactly_that_many_tokens_cached(length):
    prompt, response = split_length(length)
    assert prompt >= 1 and response >= 1
    assert prompt + response - 1 == length  # the last sampled token's K/V is never computed


def test_contiguous_sustains_one_batch_per_reservation_and_paging_several_times_more():
    base = SimConfig(num_blocks=1024, block_size=16, max_model_len=2048)  # 8 GiB of llama-2-7b fp16
    contiguous, run = largest_batch(CONTIGUOUS, base)
    assert contiguous == 1024 // 128 and run is not None and sustains(run)
    paged, run = largest_batch(PAGED, base)
    assert run is not None and sustains(run) and run.summary.peak_used_blocks <= 1024
    assert paged >= 4 * contiguous


@pytest.mark.parametrize("variant", [CONTIGUOUS, PAGED, PAGED_NO_PREFIX_CACHE], ids=lambda v: v.name)
def test_the_capacity_searchs_early_verdict_is_the_full_runs_at_every_batch_size(variant):
    # The search stops a run once its verdict is known (it took 254 s for qwen2.5-0.5b's 16 GiB pool);
    # the verdict must be the one the whole run gives, on both sides of the capacity.
    config = variant.apply(SimConfig(num_blocks=300, block_size=16, max_model_len=2048))
    verdicts = [
        (is_sustained(seed_memory(b), config), sustains(simulate(seed_memory(b), config)))
        for b in range(1, 22)
    ]
    assert [fast for fast, _ in verdicts] == [full for _, full in verdicts]
    assert any(full for _, full in verdicts) and not all(full for _, full in verdicts)


def test_the_16_gib_llama_2_7b_pool_sustains_16_reserved_and_96_paged_sequences_as_published():
    base = SimConfig(num_blocks=2048, block_size=16, max_model_len=2048)
    assert largest_batch(CONTIGUOUS, base)[0] == 16
    assert largest_batch(PAGED, base)[0] == 96
