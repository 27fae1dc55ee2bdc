"""The reservation baseline as a KV cache manager: whole max_model_len slabs, never more, never preempted."""

import pytest
from core_helpers import make_request, run_step

from pagedllm.core import Scheduler, SchedulerConfig
from pagedllm.core.contiguous_kv_cache_manager import ContiguousKVCacheManager
from pagedllm.core.kv_cache_manager import KVCacheManager
from pagedllm.core.kv_policy import kv_policy_name, make_kv_cache_manager


def test_allocate_reserves_a_whole_slab_of_max_model_len_whatever_the_prompt():
    kv = ContiguousKVCacheManager(num_blocks=10, block_size=4, max_model_len=16)
    request = make_request(num_prompt_tokens=1)
    blocks = kv.allocate(request, 1)
    assert blocks is not None and [b.block_id for b in blocks] == [0, 1, 2, 3]
    assert kv.num_free_blocks == 6
    kv.check_invariants()


def test_the_pool_holds_whole_slabs_only_and_the_remainder_is_never_used():
    kv = ContiguousKVCacheManager(num_blocks=10, block_size=4, max_model_len=16)  # 2 slabs + 2 blocks
    first, second, third = (make_request(num_prompt_tokens=2) for _ in range(3))
    assert kv.allocate(first, 2) is not None
    assert kv.allocate(second, 2) is not None
    assert kv.allocate(third, 2) is None  # 2 blocks are free, but a reservation needs 4
    assert third.request_id not in kv.block_tables
    stats = kv.stats([first, second])
    assert stats.num_unusable_blocks == 2 and stats.num_reservations == 2
    kv.check_invariants()


def test_append_slots_never_takes_a_block_up_to_max_model_len():
    kv = ContiguousKVCacheManager(num_blocks=8, block_size=4, max_model_len=16)
    request = make_request(num_prompt_tokens=3)
    kv.allocate(request, 3)
    for computed in range(3, 15):
        request.num_computed_tokens = computed
        assert kv.append_slots(request, 1) == []
    assert kv.num_free_blocks == 4


def test_free_returns_the_slab_and_the_lowest_free_slab_is_reused_first():
    kv = ContiguousKVCacheManager(num_blocks=12, block_size=4, max_model_len=16)
    requests = [make_request(num_prompt_tokens=4) for _ in range(3)]
    for request in requests:
        kv.allocate(request, 4)
    kv.free(requests[0])
    kv.free(requests[0])  # idempotent
    again = make_request(num_prompt_tokens=4)
    kv.allocate(again, 4)
    assert kv.get_block_ids(again.request_id) == (0, 1, 2, 3)
    kv.check_invariants()


def test_stats_expose_reservation_waste_split_into_tail_and_blocks_not_reached():
    kv = ContiguousKVCacheManager(num_blocks=8, block_size=4, max_model_len=16)
    request = make_request(num_prompt_tokens=5)
    kv.allocate(request, 5)
    request.num_computed_tokens = 5
    stats = kv.stats([request])
    assert (stats.num_tokens_stored, stats.num_allocated_slots) == (5, 16)
    assert stats.num_reservation_waste_slots == 11  # reserved slots not holding tokens
    assert stats.num_tail_slots == 3  # the rest of block 1, which paging would hold too
    assert stats.num_reserved_ahead_slots == 8  # blocks 2 and 3, which paging would not have taken
    assert stats.reservation_waste == pytest.approx(11 / 16)
    as_dict = stats.as_dict()
    assert as_dict["reservation_waste"] == pytest.approx(11 / 16) and as_dict["utilization"] == 5 / 16


def test_can_ever_fit_is_the_reservation_not_the_pool():
    kv = ContiguousKVCacheManager(num_blocks=40, block_size=4, max_model_len=16)
    assert kv.can_ever_fit(16)
    assert not kv.can_ever_fit(17)
    assert not ContiguousKVCacheManager(num_blocks=3, block_size=4, max_model_len=16).can_ever_fit(1)


def test_scheduler_under_contiguous_admits_only_whole_reservations_and_never_preempts():
    config = SchedulerConfig(max_num_seqs=16, max_num_batched_tokens=256, max_model_len=32)
    scheduler = Scheduler(config, ContiguousKVCacheManager(num_blocks=24, block_size=4, max_model_len=32))
    requests = [make_request(num_prompt_tokens=6, max_tokens=20) for _ in range(6)]
    for request in requests:
        scheduler.add_request(request)
    peak = 0
    while scheduler.has_unfinished_requests():
        run_step(scheduler)
        peak = max(peak, len(scheduler.running))
        scheduler.check_invariants()
    assert peak == 3  # 24 blocks / 8 per reservation, though 6 x 26 tokens = 39 blocks would page
    assert scheduler.num_preemptions == 0
    assert scheduler.kv.num_free_blocks == 24


def test_fork_is_refused():
    kv = ContiguousKVCacheManager(num_blocks=8, block_size=4, max_model_len=16)
    parent, child = make_request(num_prompt_tokens=4), make_request(num_prompt_tokens=4)
    kv.allocate(parent, 4)
    with pytest.raises(NotImplementedError):
        kv.fork(parent, child)


def test_make_kv_cache_manager_by_policy_name():
    paged = make_kv_cache_manager("paged", 16, 4, 32, enable_prefix_caching=True)
    contiguous = make_kv_cache_manager("contiguous", 16, 4, 32)
    assert type(paged) is KVCacheManager and paged.enable_prefix_caching
    assert isinstance(contiguous, ContiguousKVCacheManager) and contiguous.blocks_per_reservation == 8
    assert (kv_policy_name(paged), kv_policy_name(contiguous)) == ("paged", "contiguous")
    with pytest.raises(ValueError, match="contiguous"):
        make_kv_cache_manager("contiguous", 16, 4, 32, enable_prefix_caching=True)
    with pytest.raises(ValueError, match="kv_policy"):
        make_kv_cache_manager("virtual", 16, 4, 32)
