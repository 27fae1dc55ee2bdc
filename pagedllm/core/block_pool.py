"""Physical KV blocks: ids, reference counts, and the free queue they come from."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pagedllm.core.block_hash import BlockHash


@dataclass(slots=True, eq=False)
class KVCacheBlock:
    """One physical block of ``block_size`` token slots in the KV pool."""

    block_id: int
    ref_cnt: int = 0
    # Set once the block is full and registered in the prefix cache; cleared when it is evicted.
    block_hash: BlockHash | None = None
    # Links of the free queue; both None while the block is referenced (not free).
    prev_free: KVCacheBlock | None = None
    next_free: KVCacheBlock | None = None

    def __repr__(self) -> str:
        cached = "" if self.block_hash is None else ", cached"
        return f"KVCacheBlock(id={self.block_id}, ref_cnt={self.ref_cnt}{cached})"


class FreeBlockQueue:
    """Doubly linked list of free blocks threaded through the blocks themselves.

    Taking from the front and appending at the back are O(1), and so is ``remove`` of a block from the
    middle, which is what lets a cached block that is free (ref count 0) be revived without a scan.
    The front is the least recently freed block, so eviction order is LRU.
    """

    def __init__(self, blocks: Iterable[KVCacheBlock]) -> None:
        # Sentinels avoid every None check at the ends.
        self._head = KVCacheBlock(-1)
        self._tail = KVCacheBlock(-1)
        self._head.next_free = self._tail
        self._tail.prev_free = self._head
        self.num_free_blocks = 0
        for block in blocks:
            self.append(block)
        # NOTE: the links are cycles. A CUDA engine freezes everything alive after start-up out of the
        # garbage collector's sight (``freeze_startup_heap``), and frozen cycles are never collected:
        # unlinked when the queue goes, its blocks go by reference counting alone.
        unlink = weakref.finalize(self, _unlink_chain, self._head)
        unlink.atexit = False  # the process's end frees everything anyway

    def popleft(self) -> KVCacheBlock:
        block = self._head.next_free
        if block is self._tail or block is None:
            raise IndexError("pop from an empty free block queue")
        self.remove(block)
        return block

    def append(self, block: KVCacheBlock) -> None:
        last = self._tail.prev_free
        assert last is not None and block.prev_free is None and block.next_free is None
        last.next_free = block
        block.prev_free = last
        block.next_free = self._tail
        self._tail.prev_free = block
        self.num_free_blocks += 1

    def remove(self, block: KVCacheBlock) -> None:
        prev, nxt = block.prev_free, block.next_free
        assert prev is not None and nxt is not None, f"{block} is not in the free queue"
        prev.next_free = nxt
        nxt.prev_free = prev
        block.prev_free = block.next_free = None
        self.num_free_blocks -= 1

    def __iter__(self) -> Iterator[KVCacheBlock]:
        block = self._head.next_free
        while block is not None and block is not self._tail:
            yield block
            block = block.next_free

    def __len__(self) -> int:
        return self.num_free_blocks


class BlockPool:
    """A fixed pool of ``num_blocks`` physical blocks handed out on demand and reference counted.

    With prefix caching, a full block can be registered under its content hash. A cached block whose
    ref count falls to 0 stays cached in the free queue: a later request with the same prefix revives
    it (``touch``); only when the queue hands it out as a new block is it evicted (LRU).
    """

    def __init__(self, num_blocks: int) -> None:
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        self.num_blocks = num_blocks
        self.blocks = [KVCacheBlock(i) for i in range(num_blocks)]
        self.free_queue = FreeBlockQueue(self.blocks)
        self.cached_blocks: dict[BlockHash, KVCacheBlock] = {}
        self.num_evictions = 0

    @property
    def num_free_blocks(self) -> int:
        return self.free_queue.num_free_blocks

    def get_new_blocks(self, num_blocks: int) -> list[KVCacheBlock]:
        """Take ``num_blocks`` free blocks, each with ref count 1. The caller checks availability."""
        if num_blocks > self.num_free_blocks:
            raise ValueError(f"asked for {num_blocks} blocks with only {self.num_free_blocks} free")
        taken = [self.free_queue.popleft() for _ in range(num_blocks)]
        for block in taken:
            assert block.ref_cnt == 0
            block.ref_cnt = 1
            if block.block_hash is not None:
                del self.cached_blocks[block.block_hash]
                block.block_hash = None
                self.num_evictions += 1
        return taken

    def get_cached_block(self, block_hash: BlockHash) -> KVCacheBlock | None:
        return self.cached_blocks.get(block_hash)

    def cache_block(self, block: KVCacheBlock, block_hash: BlockHash) -> None:
        """Register a full, referenced block under its hash. If another block already holds the same
        content (two requests computed one prefix at once), this one simply stays uncached."""
        assert block.ref_cnt > 0 and block.block_hash is None
        if block_hash not in self.cached_blocks:
            block.block_hash = block_hash
            self.cached_blocks[block_hash] = block

    def touch(self, blocks: Iterable[KVCacheBlock]) -> None:
        """Add one reference to each block, taking it out of the free queue if it was free."""
        for block in blocks:
            if block.ref_cnt == 0:
                self.free_queue.remove(block)
            block.ref_cnt += 1

    def free_blocks(self, blocks: Iterable[KVCacheBlock]) -> None:
        """Drop one reference from each block; a block whose count reaches 0 joins the free queue's back.

        NOTE: callers pass a sequence's blocks tail first, so that the blocks holding the end of a
        sequence are the first to be reused and a shared prefix stays longest.
        """
        for block in blocks:
            assert block.ref_cnt > 0, f"{block} freed more times than it was referenced"
            block.ref_cnt -= 1
            if block.ref_cnt == 0:
                self.free_queue.append(block)

    def check_invariants(self) -> None:
        """Every block is either free (ref count 0, in the queue) or referenced, never both."""
        free_ids = {block.block_id for block in self.free_queue}
        assert len(free_ids) == self.num_free_blocks, "free queue count disagrees with its contents"
        for block in self.blocks:
            assert block.ref_cnt >= 0, f"{block} has a negative ref count"
            assert (block.ref_cnt == 0) == (block.block_id in free_ids), f"{block} free/referenced mismatch"
            if block.block_hash is not None:
                assert self.cached_blocks[block.block_hash] is block, f"{block} cached under a stale hash"
        assert len(self.cached_blocks) == sum(b.block_hash is not None for b in self.blocks)


def _unlink_chain(head: KVCacheBlock) -> None:
    """Clear the links of every block from ``head`` on (blocks out of the queue have none)."""
    block: KVCacheBlock | None = head
    while block is not None:
        following = block.next_free
        block.prev_free = block.next_free = None
        block = following
