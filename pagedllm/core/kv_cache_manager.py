"""Block tables: which physical blocks hold each sequence's KV, taken from the pool as tokens arrive."""

from __future__ import annotations

from dataclasses import dataclass

from pagedllm.core.block_pool import BlockPool, KVCacheBlock
from pagedllm.core.request import Request


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(slots=True, frozen=True)
class KVCacheStats:
    num_blocks: int
    num_free_blocks: int
    block_size: int
    num_tokens_stored: int  # tokens whose K/V sit in the pool
    num_allocated_slots: int  # slots in blocks held by sequences

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - self.num_free_blocks

    @property
    def utilization(self) -> float:
        """Tokens stored / slots in allocated blocks (1.0 when nothing is allocated: nothing is wasted)."""
        return self.num_tokens_stored / self.num_allocated_slots if self.num_allocated_slots else 1.0

    @property
    def usage(self) -> float:
        """Fraction of the pool's blocks in use."""
        return self.num_used_blocks / self.num_blocks

    def as_dict(self) -> dict[str, float | int]:
        return {
            "num_blocks": self.num_blocks,
            "num_free_blocks": self.num_free_blocks,
            "num_used_blocks": self.num_used_blocks,
            "block_size": self.block_size,
            "num_tokens_stored": self.num_tokens_stored,
            "num_allocated_slots": self.num_allocated_slots,
            "utilization": self.utilization,
            "usage": self.usage,
        }


class KVCacheManager:
    """Owns one block table per request and grows it on demand: no slot is reserved ahead of need.

    ``allocate`` (admission) and ``append_slots`` (growth) return the new blocks, or None when the pool
    cannot serve them; then nothing was taken, and the scheduler decides whom to preempt.
    """

    def __init__(self, num_blocks: int, block_size: int) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = block_size
        self.pool = BlockPool(num_blocks)
        self.block_tables: dict[str, list[KVCacheBlock]] = {}

    @property
    def num_blocks(self) -> int:
        return self.pool.num_blocks

    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free_blocks

    def can_ever_fit(self, num_tokens: int) -> bool:
        """Whether a sequence of ``num_tokens`` fits in the whole pool, all other sequences gone."""
        return cdiv(num_tokens, self.block_size) <= self.num_blocks

    def allocate(self, request: Request, num_new_tokens: int) -> list[KVCacheBlock] | None:
        """Admit a waiting request: blocks for its first ``num_new_tokens`` uncomputed tokens."""
        assert request.request_id not in self.block_tables, f"{request.request_id} already has blocks"
        self.block_tables[request.request_id] = []
        new_blocks = self.append_slots(request, num_new_tokens)
        if new_blocks is None:
            del self.block_tables[request.request_id]
        return new_blocks

    def append_slots(self, request: Request, num_new_tokens: int) -> list[KVCacheBlock] | None:
        """Grow a request's table to hold ``num_computed_tokens + num_new_tokens`` tokens."""
        table = self.block_tables[request.request_id]
        num_needed = cdiv(request.num_computed_tokens + num_new_tokens, self.block_size) - len(table)
        if num_needed <= 0:
            return []
        if num_needed > self.pool.num_free_blocks:
            return None
        new_blocks = self.pool.get_new_blocks(num_needed)
        table.extend(new_blocks)
        return new_blocks

    def free(self, request: Request) -> None:
        """Release every block the request holds (a request without blocks is a no-op)."""
        table = self.block_tables.pop(request.request_id, None)
        if table:
            self.pool.free_blocks(reversed(table))

    def get_block_ids(self, request_id: str) -> list[int]:
        return [block.block_id for block in self.block_tables[request_id]]

    def stats(self, requests: list[Request]) -> KVCacheStats:
        """Pool occupancy; ``requests`` are the ones holding blocks (their computed tokens are stored)."""
        num_tokens = sum(r.num_computed_tokens for r in requests if r.request_id in self.block_tables)
        num_slots = sum(len(table) for table in self.block_tables.values()) * self.block_size
        return KVCacheStats(
            num_blocks=self.num_blocks,
            num_free_blocks=self.num_free_blocks,
            block_size=self.block_size,
            num_tokens_stored=num_tokens,
            num_allocated_slots=num_slots,
        )

    def check_invariants(self) -> None:
        """free + referenced == num_blocks, and every ref count equals the tables that hold the block."""
        self.pool.check_invariants()
        counts: dict[int, int] = {}
        for table in self.block_tables.values():
            for block in table:
                counts[block.block_id] = counts.get(block.block_id, 0) + 1
        for block in self.pool.blocks:
            expected = counts.get(block.block_id, 0)
            assert block.ref_cnt == expected, f"{block} held by {expected} tables"
        assert self.num_free_blocks + len(counts) == self.num_blocks, "blocks leaked"
