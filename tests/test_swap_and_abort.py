"""Preemption by swapping, the choice of mode, and abort in every state a request can be in."""

from __future__ import annotations

import pytest
from core_helpers import make_request

from pagedllm.core import KVCacheManager, Request, RequestStatus, Scheduler, SchedulerConfig, StopCriteria


def make_swap_scheduler(
    num_blocks: int = 8,
    num_cpu_blocks: int = 16,
    mode: str = "swap",
    threshold: int = 0,
    max_num_batched_tokens: int = 64,
    prefix_caching: bool = False,
) -> Scheduler:
    config = SchedulerConfig(
        max_num_seqs=8,
        max_num_batched_tokens=max_num_batched_tokens,
        max_model_len=64,
        preemption_mode=mode,
        swap_threshold_tokens=threshold,
    )
    kv = KVCacheManager(num_blocks, 4, enable_prefix_caching=prefix_caching, num_cpu_blocks=num_cpu_blocks)
    return Scheduler(config, kv)


def fill_pool(scheduler: Scheduler, num_requests: int = 2, prompt: int = 12, max_tokens: int = 18):
    """Requests that outgrow the pool together (each fits alone): decode steps must preempt someone."""
    requests = [make_request(num_prompt_tokens=prompt, max_tokens=max_tokens) for _ in range(num_requests)]
    for request in requests:
        scheduler.add_request(request)
    return requests


def run_step(scheduler: Scheduler):
    """One step of a fake model that samples 500 for every sequence that needs a token (forks too)."""
    out = scheduler.schedule()
    sampled = {
        request_id: 500
        for item in out.scheduled
        if item.needs_sample
        for request_id in (item.request_id, *item.fork_request_ids)
    }
    scheduler.update_from_output(out, sampled)
    return out


def step_until(scheduler: Scheduler, predicate, max_steps: int = 50):
    for _ in range(max_steps):
        out = run_step(scheduler)
        scheduler.check_invariants()
        if predicate(out):
            return out
    raise AssertionError("the condition never happened")


def drain(scheduler: Scheduler) -> None:
    for _ in range(500):
        if not scheduler.has_unfinished_requests():
            break
        run_step(scheduler)
        scheduler.check_invariants()
    assert not scheduler.has_unfinished_requests(), "requests starved"
    assert scheduler.kv.num_free_blocks == scheduler.kv.num_blocks
    assert scheduler.kv.num_free_cpu_blocks == scheduler.kv.num_cpu_blocks


def add_with_forks(scheduler: Scheduler, parent: Request, num_children: int) -> list[Request]:
    """Add ``parent`` and ``num_children`` forks of it (``n > 1``): they fork when its prefill is sampled."""
    children = [
        Request(f"{parent.request_id}#{i}", parent.prompt_token_ids, parent.stop)
        for i in range(1, num_children + 1)
    ]
    scheduler.add_request(parent)
    scheduler.add_fork_children(parent.request_id, children)
    return children


def test_swap_moves_the_newest_requests_blocks_out_and_resumes_it_where_it_stopped():
    scheduler = make_swap_scheduler()
    _, new = fill_pool(scheduler)  # 2 x 12 tokens = 6 blocks of 8; growth needs more
    out = step_until(scheduler, lambda out: out.blocks_to_swap_out)
    assert out.swapped_out_request_ids == {new.request_id}
    assert new.status == RequestStatus.SWAPPED and scheduler.swapped == [new]
    computed = new.num_computed_tokens
    assert computed > 0, "a swapped request keeps its computed tokens"
    assert len(out.blocks_to_swap_out) == len(scheduler.kv.swapped_tables[new.request_id])
    assert new.request_id not in scheduler.kv.block_tables
    out = step_until(scheduler, lambda out: out.blocks_to_swap_in)
    resumed = next(item for item in out.scheduled if item.request_id == new.request_id)
    assert resumed.start_position == computed, "resumed without recomputing"
    assert [gpu for _, gpu in out.blocks_to_swap_in] == list(resumed.block_ids[: len(out.blocks_to_swap_in)])
    assert scheduler.num_swap_preemptions >= 1
    drain(scheduler)


def test_recompute_mode_never_swaps():
    scheduler = make_swap_scheduler(mode="recompute")
    fill_pool(scheduler)
    step_until(scheduler, lambda out: out.preempted_request_ids)
    assert scheduler.num_swap_preemptions == 0 and not scheduler.swapped
    drain(scheduler)


@pytest.mark.parametrize(("threshold", "expect_swap"), [(8, True), (40, False)])
def test_auto_mode_swaps_long_sequences_and_recomputes_short_ones(threshold: int, expect_swap: bool):
    scheduler = make_swap_scheduler(mode="auto", threshold=threshold)
    fill_pool(scheduler)  # the victim has 12+ computed tokens when preempted
    out = step_until(scheduler, lambda out: out.preempted_request_ids)
    assert bool(out.swapped_out_request_ids) == expect_swap
    drain(scheduler)


def test_a_full_swap_space_falls_back_to_recompute():
    scheduler = make_swap_scheduler(num_cpu_blocks=2)  # the victim holds more blocks than that
    _, new = fill_pool(scheduler)
    out = step_until(scheduler, lambda out: out.preempted_request_ids)
    assert not out.swapped_out_request_ids and new.status == RequestStatus.PREEMPTED
    assert new.num_computed_tokens == 0
    drain(scheduler)


def test_a_request_sharing_blocks_with_a_fork_is_recomputed_not_swapped():
    scheduler = make_swap_scheduler(num_blocks=9)
    parent = make_request(num_prompt_tokens=10, max_tokens=20)
    add_with_forks(scheduler, parent, 1)
    out = step_until(scheduler, lambda out: out.preempted_request_ids)
    assert not out.swapped_out_request_ids, "a block shared by forks must not be swapped"
    assert all(scheduler.requests[rid].status == RequestStatus.PREEMPTED for rid in out.preempted_request_ids)
    drain(scheduler)


def test_a_beam_is_recomputed_not_swapped():
    scheduler = make_swap_scheduler(num_blocks=6)
    beam = Request("beam", list(range(10, 22)), StopCriteria(max_tokens=30), is_beam=True)
    other = make_request(num_prompt_tokens=4, max_tokens=30)
    scheduler.add_request(other)
    scheduler.add_request(beam)
    for _ in range(30):
        out = run_step(scheduler)
        if beam.request_id in scheduler._awaiting_beam_step:
            scheduler.extend_beam(beam.request_id, 9)
        scheduler.check_invariants()
        if beam.request_id in out.preempted_request_ids:
            break
    assert beam.status == RequestStatus.PREEMPTED and scheduler.num_swap_preemptions == 0


def test_a_swapped_request_resumes_before_any_later_arrival():
    scheduler = make_swap_scheduler()
    _, swapped = fill_pool(scheduler)
    step_until(scheduler, lambda out: out.swapped_out_request_ids)
    late = make_request(num_prompt_tokens=2, max_tokens=2)  # small: it would fit before the swap-in
    scheduler.add_request(late)
    out = step_until(scheduler, lambda out: out.blocks_to_swap_in or late.status != RequestStatus.WAITING)
    assert swapped.status == RequestStatus.RUNNING or swapped.is_finished
    assert any(item.request_id == swapped.request_id for item in out.scheduled)
    drain(scheduler)


def test_swap_in_and_swap_out_never_share_a_step():
    scheduler = make_swap_scheduler(num_blocks=10)
    fill_pool(scheduler, num_requests=3, prompt=10, max_tokens=20)
    for _ in range(200):
        if not scheduler.has_unfinished_requests():
            break
        out = run_step(scheduler)
        assert not (out.blocks_to_swap_in and out.blocks_to_swap_out)
        scheduler.check_invariants()
    assert scheduler.num_swap_preemptions > 0
    drain(scheduler)


def test_chunked_prefill_caches_a_block_only_once_all_its_tokens_are_computed():
    # Regression: get_computed_blocks hashes the whole prompt ahead; caching used to register the
    # half-computed block of a chunk, which a prefix hit could then read before it was written.
    scheduler = make_swap_scheduler(num_blocks=16, max_num_batched_tokens=6, prefix_caching=True)
    request = make_request(num_prompt_tokens=12, max_tokens=2)
    scheduler.add_request(request)
    out = scheduler.schedule()
    assert out.scheduled[0].num_tokens == 6
    scheduler.update_from_output(out, {})
    table = scheduler.kv.block_tables[request.request_id]
    assert [block.block_hash is not None for block in table] == [True, False]


# -- abort anywhere ------------------------------------------------------------------------------


def abort(scheduler: Scheduler, request: Request) -> None:
    scheduler.finish_requests([request.request_id], RequestStatus.FINISHED_ABORTED)
    scheduler.check_invariants()
    assert request.status == RequestStatus.FINISHED_ABORTED
    assert request.request_id not in scheduler.kv.block_tables
    assert request.request_id not in scheduler.kv.swapped_tables


def test_abort_a_waiting_request():
    scheduler = make_swap_scheduler()
    request = make_request(num_prompt_tokens=5)
    scheduler.add_request(request)
    abort(scheduler, request)
    assert not scheduler.waiting
    drain(scheduler)


def test_an_id_reused_after_its_waiting_request_was_aborted_runs_the_new_request_only():
    scheduler = make_swap_scheduler()
    first = make_request(num_prompt_tokens=3, max_tokens=3)
    scheduler.add_request(first)
    old = Request("reused", [5, 6, 7], StopCriteria(max_tokens=3))
    scheduler.add_request(old)  # waits behind the first request: its abort leaves it in the deque
    abort(scheduler, old)
    new = Request("reused", [9, 9, 9, 9, 9], StopCriteria(max_tokens=3))
    scheduler.add_request(new)
    drain(scheduler)
    assert old.num_computed_tokens == 0 and old.status == RequestStatus.FINISHED_ABORTED
    assert new.status == RequestStatus.FINISHED_LENGTH and len(new.output_token_ids) == 3


def test_abort_mid_chunked_prefill_keeps_the_other_requests_prefix_hit_correct():
    scheduler = make_swap_scheduler(num_blocks=16, max_num_batched_tokens=8, prefix_caching=True)
    first = make_request(num_prompt_tokens=8, max_tokens=4)
    scheduler.add_request(first)
    run_step(scheduler)  # first's 2 full blocks are cached and held
    long = Request("long", [*first.prompt_token_ids, *range(200, 220)], first.stop)
    scheduler.add_request(long)
    run_step(scheduler)  # long hits first's 2 blocks, then prefills a chunk
    assert long.status == RequestStatus.RUNNING and long.num_computed_tokens < long.num_tokens
    shared = scheduler.kv.block_tables[first.request_id][:2]
    assert [block.ref_cnt for block in shared] == [2, 2]
    abort(scheduler, long)
    assert [block.ref_cnt for block in shared] == [1, 1], "the survivor keeps its cached prefix"
    assert all(block.block_hash is not None for block in shared)
    drain(scheduler)


def test_abort_a_running_request():
    scheduler = make_swap_scheduler()
    request, other = fill_pool(scheduler, max_tokens=4)
    run_step(scheduler)
    abort(scheduler, request)
    assert scheduler.running == [other]
    drain(scheduler)


def test_abort_a_swapped_request_releases_its_swap_slots():
    scheduler = make_swap_scheduler()
    _, swapped = fill_pool(scheduler)
    step_until(scheduler, lambda out: out.swapped_out_request_ids)
    assert scheduler.kv.num_free_cpu_blocks < scheduler.kv.num_cpu_blocks
    abort(scheduler, swapped)
    assert not scheduler.swapped
    assert scheduler.kv.num_free_cpu_blocks == scheduler.kv.num_cpu_blocks
    drain(scheduler)


def test_abort_a_recompute_preempted_request():
    scheduler = make_swap_scheduler(mode="recompute")
    _, preempted = fill_pool(scheduler)
    step_until(scheduler, lambda out: out.preempted_request_ids)
    assert preempted.status == RequestStatus.PREEMPTED
    abort(scheduler, preempted)
    drain(scheduler)


def test_abort_a_parent_with_pending_children_ends_the_children_too():
    scheduler = make_swap_scheduler(max_num_batched_tokens=4)
    parent = make_request(num_prompt_tokens=10, max_tokens=5)
    children = add_with_forks(scheduler, parent, 2)
    run_step(scheduler)  # mid-prefill: the children wait for its sample
    abort(scheduler, parent)
    assert all(child.status == RequestStatus.FINISHED_ABORTED for child in children)
    assert not scheduler.requests
    drain(scheduler)


def test_abort_one_fork_keeps_the_shared_blocks_for_its_siblings():
    scheduler = make_swap_scheduler(num_blocks=16)
    parent = make_request(num_prompt_tokens=10, max_tokens=8)
    (child,) = add_with_forks(scheduler, parent, 1)
    run_step(scheduler)  # the child forks: every block shared
    assert all(block.ref_cnt == 2 for block in scheduler.kv.block_tables[child.request_id])
    abort(scheduler, child)
    assert all(block.ref_cnt == 1 for block in scheduler.kv.block_tables[parent.request_id])
    drain(scheduler)
    assert parent.status == RequestStatus.FINISHED_LENGTH


def test_abort_every_beam_of_a_search_releases_every_block():
    scheduler = make_swap_scheduler(num_blocks=16)
    beam = Request("b", list(range(10, 20)), StopCriteria(max_tokens=10), is_beam=True)
    scheduler.add_request(beam)
    run_step(scheduler)
    scheduler.fork_beam("b", "b.1")
    scheduler.extend_beam("b.1", 3)
    scheduler.extend_beam("b", 4)
    run_step(scheduler)
    scheduler.finish_requests(["b", "b.1"], RequestStatus.FINISHED_ABORTED)
    scheduler.check_invariants()
    assert scheduler.kv.num_free_blocks == scheduler.kv.num_blocks and not scheduler.running


def test_engine_config_validates_the_swap_options():
    from pagedllm.config import EngineConfig

    with pytest.raises(ValueError, match="preemption_mode='sometimes'"):
        EngineConfig(preemption_mode="sometimes")
    with pytest.raises(ValueError, match="needs swap_space > 0"):
        EngineConfig(preemption_mode="swap", swap_space=0)
    with pytest.raises(ValueError, match="swap_space must be None or a number of GiB"):
        EngineConfig(swap_space=-1)
    with pytest.raises(ValueError, match="swap_threshold_tokens"):
        SchedulerConfig(swap_threshold_tokens=-1)
    assert EngineConfig(swap_space=0.5).swap_space_bytes(torch_cpu()) == 2**29


def torch_cpu():
    import torch

    return torch.device("cpu")
