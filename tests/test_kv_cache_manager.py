from core_helpers import make_request

from pagedllm.core import KVCacheManager


def test_allocate_takes_only_the_blocks_the_new_tokens_need():
    kv = KVCacheManager(num_blocks=10, block_size=4)
    request = make_request(num_prompt_tokens=5, max_tokens=100)
    blocks = kv.allocate(request, 5)
    assert blocks is not None and len(blocks) == 2  # never reserved for max_tokens
    kv.check_invariants()


def test_append_slots_takes_a_block_only_when_the_last_one_is_full():
    kv = KVCacheManager(num_blocks=10, block_size=4)
    request = make_request(num_prompt_tokens=3)
    kv.allocate(request, 3)
    request.num_computed_tokens = 3
    assert kv.append_slots(request, 1) == []  # slot 4 of block 0
    request.num_computed_tokens = 4
    new = kv.append_slots(request, 1)
    assert new is not None and len(new) == 1
    assert len(kv.get_block_ids(request.request_id)) == 2


def test_allocation_failure_returns_none_and_takes_nothing():
    kv = KVCacheManager(num_blocks=3, block_size=4)
    first = make_request(num_prompt_tokens=8)
    assert kv.allocate(first, 8) is not None
    second = make_request(num_prompt_tokens=8)
    assert kv.allocate(second, 8) is None
    assert kv.num_free_blocks == 1
    assert second.request_id not in kv.block_tables
    kv.check_invariants()


def test_free_returns_every_block_and_is_idempotent():
    kv = KVCacheManager(num_blocks=4, block_size=2)
    request = make_request(num_prompt_tokens=7)
    kv.allocate(request, 7)
    kv.free(request)
    kv.free(request)
    assert kv.num_free_blocks == 4
    kv.check_invariants()


def test_stats_count_tokens_against_allocated_slots():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    request = make_request(num_prompt_tokens=5)
    kv.allocate(request, 5)
    request.num_computed_tokens = 5
    stats = kv.stats([request])
    assert (stats.num_tokens_stored, stats.num_allocated_slots) == (5, 8)
    assert stats.utilization == 5 / 8
    assert stats.num_free_blocks == 6


def test_can_ever_fit_compares_with_the_whole_pool():
    kv = KVCacheManager(num_blocks=4, block_size=4)
    assert kv.can_ever_fit(16)
    assert not kv.can_ever_fit(17)


def test_a_chunk_ending_inside_a_block_leaves_that_block_out_of_the_prefix_cache():
    """Only fully computed blocks are shareable: a chunked prefill that stops mid-block must not publish
    the block (its hash is known from the prompt, its K/V are not all written yet)."""
    kv = KVCacheManager(num_blocks=8, block_size=4, enable_prefix_caching=True)
    first = make_request(12)
    assert kv.get_computed_blocks(first) == []  # hashes all three prompt blocks
    kv.allocate(first, 6)  # the first chunk: tokens 0-5, ending inside block 1
    first.num_computed_tokens = 6
    kv.cache_full_blocks(first)
    table = kv.block_tables[first.request_id]
    assert table[0].block_hash is not None and table[1].block_hash is None

    second = make_request(12)  # the same prompt
    assert second.all_token_ids == first.all_token_ids
    assert kv.get_computed_blocks(second) == [table[0]]

    kv.append_slots(first, 6)
    first.num_computed_tokens = 12
    kv.cache_full_blocks(first)
    assert kv.get_computed_blocks(second) == table[:2]  # the last block stays computable: 11 // 4 = 2
