import pytest

from pagedllm.core import BlockPool, FreeBlockQueue, KVCacheBlock


def test_free_queue_pops_in_fifo_order_and_removes_from_the_middle():
    blocks = [KVCacheBlock(i) for i in range(5)]
    queue = FreeBlockQueue(blocks)
    queue.remove(blocks[2])
    assert [b.block_id for b in queue] == [0, 1, 3, 4]
    assert queue.popleft() is blocks[0]
    queue.append(blocks[2])
    assert [b.block_id for b in queue] == [1, 3, 4, 2]
    assert len(queue) == 4


def test_free_queue_pop_from_empty_raises():
    queue = FreeBlockQueue([])
    with pytest.raises(IndexError):
        queue.popleft()


def test_new_blocks_have_ref_count_one_and_leave_the_free_queue():
    pool = BlockPool(4)
    taken = pool.get_new_blocks(3)
    assert [b.ref_cnt for b in taken] == [1, 1, 1]
    assert pool.num_free_blocks == 1
    pool.check_invariants()


def test_freed_blocks_return_to_the_back_in_lru_order():
    pool = BlockPool(4)
    a, _, c = pool.get_new_blocks(3)
    pool.free_blocks([c, a])
    # The never-used block 3 is the oldest free one; then c, then a.
    assert [blk.block_id for blk in pool.free_queue] == [3, c.block_id, a.block_id]
    pool.check_invariants()


def test_touch_revives_a_free_block_and_shared_block_frees_on_last_reference():
    pool = BlockPool(2)
    (block,) = pool.get_new_blocks(1)
    pool.touch([block])
    assert block.ref_cnt == 2
    pool.free_blocks([block])
    assert pool.num_free_blocks == 1  # still referenced once
    pool.free_blocks([block])
    assert pool.num_free_blocks == 2
    pool.touch([block])  # revive from the middle of the free queue
    assert block.ref_cnt == 1 and pool.num_free_blocks == 1
    pool.check_invariants()


def test_asking_for_more_blocks_than_free_raises_and_takes_nothing():
    pool = BlockPool(2)
    with pytest.raises(ValueError, match="only 2 free"):
        pool.get_new_blocks(3)
    assert pool.num_free_blocks == 2


def test_pool_size_must_be_positive():
    with pytest.raises(ValueError, match="num_blocks"):
        BlockPool(0)
