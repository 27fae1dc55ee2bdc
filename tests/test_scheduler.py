import pytest
from core_helpers import make_request, make_scheduler, run_step

from pagedllm.core import (
    KVCacheManager,
    RequestRejectedError,
    RequestStatus,
    Scheduler,
    SchedulerConfig,
    block_hash,
)


def test_prefill_and_decode_share_one_step():
    scheduler = make_scheduler()
    first = make_request(num_prompt_tokens=6, max_tokens=5)
    scheduler.add_request(first)
    run_step(scheduler)  # prefill of `first`, one token sampled
    second = make_request(num_prompt_tokens=10)
    scheduler.add_request(second)
    out = scheduler.schedule()
    assert [(s.request_id, s.num_tokens) for s in out.scheduled] == [
        (first.request_id, 1),
        (second.request_id, 10),
    ]


def test_token_budget_chunks_a_long_prompt_across_steps():
    scheduler = make_scheduler(max_num_batched_tokens=8)
    request = make_request(num_prompt_tokens=20, max_tokens=2)
    scheduler.add_request(request)
    chunks = []
    for _ in range(3):
        out = scheduler.schedule()
        chunks.append((out.scheduled[0].start_position, out.scheduled[0].num_tokens))
        assert out.scheduled[0].needs_sample == (len(chunks) == 3)
        scheduler.update_from_output(out, {request.request_id: 1})
    assert chunks == [(0, 8), (8, 8), (16, 4)]
    assert request.output_token_ids == [1]


def test_without_chunked_prefill_a_prompt_over_the_budget_waits_for_a_whole_step():
    scheduler = make_scheduler(max_num_batched_tokens=16, max_model_len=16, enable_chunked_prefill=False)
    running = make_request(num_prompt_tokens=10, max_tokens=5)
    scheduler.add_request(running)
    run_step(scheduler)
    waiting = make_request(num_prompt_tokens=15)
    scheduler.add_request(waiting)
    out = scheduler.schedule()  # 1 decode token + 15 prompt tokens = 16: fits
    assert [s.num_tokens for s in out.scheduled] == [1, 15]


def test_chunked_prefill_off_needs_budget_for_max_model_len():
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        SchedulerConfig(max_num_batched_tokens=8, max_model_len=16, enable_chunked_prefill=False)


def test_max_num_seqs_caps_the_running_batch_and_the_rest_wait_fcfs():
    scheduler = make_scheduler(max_num_seqs=2)
    requests = [make_request(num_prompt_tokens=3) for _ in range(4)]
    for r in requests:
        scheduler.add_request(r)
    out = scheduler.schedule()
    assert [s.request_id for s in out.scheduled] == [requests[0].request_id, requests[1].request_id]
    assert [r.request_id for r in scheduler.waiting] == [requests[2].request_id, requests[3].request_id]


def test_out_of_blocks_preempts_the_newest_running_request_to_the_front_of_the_queue():
    # 4 blocks of 4 slots; two requests of 7 prompt tokens take 2 blocks each and then both need a third.
    scheduler = make_scheduler(num_blocks=4, block_size=4, max_model_len=16)
    old, new = (
        make_request(num_prompt_tokens=7, max_tokens=6),
        make_request(num_prompt_tokens=7, max_tokens=6),
    )
    later = make_request(num_prompt_tokens=2)
    scheduler.add_request(old)
    scheduler.add_request(new)
    run_step(scheduler)  # prefill: 7 tokens computed, an 8th sampled
    run_step(scheduler)  # decode: 8 computed (2 full blocks each), a 9th sampled
    scheduler.add_request(later)
    out = scheduler.schedule()
    assert out.preempted_request_ids == {new.request_id}
    assert [s.request_id for s in out.scheduled] == [old.request_id]
    assert [r.request_id for r in scheduler.waiting] == [new.request_id, later.request_id]
    assert new.status == RequestStatus.PREEMPTED and new.num_computed_tokens == 0
    assert new.output_token_ids == [500, 500]  # outputs survive; they are recomputed with the prompt
    scheduler.check_invariants()


def test_preempted_request_is_recomputed_with_its_outputs_and_finishes():
    scheduler = make_scheduler(num_blocks=4, block_size=4, max_model_len=16)
    requests = [make_request(num_prompt_tokens=7, max_tokens=6) for _ in range(2)]
    for r in requests:
        scheduler.add_request(r)
    recomputed = []
    while scheduler.has_unfinished_requests():
        out = scheduler.schedule()
        recomputed += [s.num_tokens for s in out.scheduled if s.start_position == 0 and s.num_tokens > 7]
        scheduler.update_from_output(out, {s.request_id: 500 for s in out.scheduled if s.needs_sample})
        scheduler.check_invariants()
    assert recomputed, "expected a preempted request to be recomputed with its outputs"
    assert all(len(r.output_token_ids) == 6 for r in requests)
    assert scheduler.kv.num_free_blocks == 4


def test_a_request_that_can_never_fit_the_pool_is_rejected():
    scheduler = make_scheduler(num_blocks=2, block_size=4, max_model_len=64)
    with pytest.raises(RequestRejectedError, match="whole KV cache"):
        scheduler.add_request(make_request(num_prompt_tokens=8))
    assert not scheduler.has_unfinished_requests()


def test_a_prompt_at_max_model_len_is_rejected_with_both_counts():
    scheduler = make_scheduler(max_model_len=16)
    with pytest.raises(RequestRejectedError, match=r"16 tokens.*max_model_len is 16"):
        scheduler.add_request(make_request(num_prompt_tokens=16))


def test_duplicate_request_id_is_refused():
    scheduler = make_scheduler()
    request = make_request(num_prompt_tokens=3)
    scheduler.add_request(request)
    with pytest.raises(ValueError, match="already in use"):
        scheduler.add_request(request)


def test_stops_on_eos_after_min_tokens_and_on_max_tokens():
    scheduler = make_scheduler()
    eos = make_request(num_prompt_tokens=3, max_tokens=10, min_tokens=2, eos_token_id=500)
    length = make_request(num_prompt_tokens=3, max_tokens=3)
    scheduler.add_request(eos)
    scheduler.add_request(length)
    for _ in range(3):
        run_step(scheduler, token=500)
    assert eos.status == RequestStatus.FINISHED_STOPPED and len(eos.output_token_ids) == 2
    assert length.status == RequestStatus.FINISHED_LENGTH and len(length.output_token_ids) == 3
    assert scheduler.kv.num_free_blocks == scheduler.kv.num_blocks


def test_stop_token_id_sets_stop_reason():
    scheduler = make_scheduler()
    request = make_request(num_prompt_tokens=3, stop_token_ids=frozenset({500}))
    scheduler.add_request(request)
    run_step(scheduler, token=500)
    assert request.status == RequestStatus.FINISHED_STOPPED and request.stop_reason == 500


def test_reaching_max_model_len_finishes_with_length():
    scheduler = make_scheduler(max_model_len=8)
    request = make_request(num_prompt_tokens=6, max_tokens=100)
    scheduler.add_request(request)
    while scheduler.has_unfinished_requests():
        run_step(scheduler)
    assert request.status == RequestStatus.FINISHED_LENGTH and request.num_tokens == 8


def test_abort_frees_blocks_of_running_and_removes_waiting_requests():
    scheduler = make_scheduler(max_num_seqs=1)
    running, waiting = make_request(num_prompt_tokens=5), make_request(num_prompt_tokens=5)
    scheduler.add_request(running)
    scheduler.add_request(waiting)
    run_step(scheduler)
    scheduler.finish_requests(
        [running.request_id, waiting.request_id, "unknown"], RequestStatus.FINISHED_ABORTED
    )
    assert not scheduler.has_unfinished_requests() and len(scheduler.waiting) == 0
    assert scheduler.kv.num_free_blocks == scheduler.kv.num_blocks
    out = scheduler.schedule()
    assert out.finished_request_ids == {running.request_id}  # the worker never saw `waiting`
    scheduler.check_invariants()


def test_new_requests_are_announced_to_the_worker_once():
    scheduler = make_scheduler()
    request = make_request(num_prompt_tokens=3, max_tokens=4)
    scheduler.add_request(request)
    first = scheduler.schedule()
    assert [n.request_id for n in first.new_requests] == [request.request_id]
    scheduler.update_from_output(first, {request.request_id: 1})
    assert scheduler.schedule().new_requests == []


def _caching_scheduler(max_num_batched_tokens: int) -> Scheduler:
    config = SchedulerConfig(max_num_seqs=8, max_num_batched_tokens=max_num_batched_tokens, max_model_len=64)
    return Scheduler(config, KVCacheManager(64, 4, enable_prefix_caching=True))


def _count_block_hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-element list counting the blocks hashed from now on."""
    count = [0]
    real = block_hash.hash_block

    def counting(*args: object, **kwargs: object) -> bytes:
        count[0] += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(block_hash, "hash_block", counting)
    return count


def test_prepare_admissions_hashes_what_the_next_step_admits_so_schedule_hashes_nothing(monkeypatch):
    scheduler = _caching_scheduler(max_num_batched_tokens=24)
    requests = [make_request(num_prompt_tokens=12) for _ in range(3)]  # three full blocks each
    for request in requests:
        scheduler.add_request(request)
    hashed = _count_block_hashes(monkeypatch)
    scheduler.prepare_admissions()
    assert hashed[0] == 6, "the two requests a 24-token step admits, and not the third"
    out = scheduler.schedule()
    assert [item.request_id for item in out.scheduled] == [r.request_id for r in requests[:2]]
    assert hashed[0] == 6, "schedule found the admitted requests' hashes computed"


def test_a_step_after_prepare_admissions_is_the_step_without_it_prefix_hits_included():
    def steps(prepare: bool) -> list[list[tuple[str, int, int]]]:
        ids = iter(range(3))
        scheduler = _caching_scheduler(max_num_batched_tokens=16)
        shown = []
        for _ in range(3):
            # the same 13-token prompt three times: the later ones hit the first one's three blocks
            request = make_request(num_prompt_tokens=13, max_tokens=2)
            request.request_id = f"same-{next(ids)}"
            scheduler.add_request(request)
        for _ in range(5):
            if prepare:
                scheduler.prepare_admissions()
            out = scheduler.schedule()
            shown.append([(s.request_id, s.num_tokens, s.start_position) for s in out.scheduled])
            scheduler.update_from_output(out, {s.request_id: 500 for s in out.scheduled if s.needs_sample})
        return shown

    assert steps(prepare=True) == steps(prepare=False)
    assert any(start == 12 for step in steps(prepare=True) for _, _, start in step), "no prefix hit"


def test_a_waiting_request_aborted_after_prepare_admissions_leaves_no_hashes_behind():
    scheduler = _caching_scheduler(max_num_batched_tokens=24)
    request = make_request(num_prompt_tokens=12)
    scheduler.add_request(request)
    scheduler.prepare_admissions()
    assert request.request_id in scheduler.kv._block_hashes
    scheduler.finish_requests([request.request_id], RequestStatus.FINISHED_ABORTED)
    assert request.request_id not in scheduler.kv._block_hashes
