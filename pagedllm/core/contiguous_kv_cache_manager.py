"""The reservation baseline: every admitted request holds ``max_model_len`` slots until it finishes.

This is how a KV cache without paging has to work (a static cache of ``max_num_seqs`` rows, as in
FasterTransformer or a padded Hugging Face batch): a request cannot grow into memory it does not own, so
it owns the longest sequence it might become from the moment it is admitted. Same scheduler, same
model, same outputs as the paged policy; only admission and memory use differ.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from pagedllm.core.block_pool import KVCacheBlock
from pagedllm.core.kv_cache_manager import KVCacheManager, KVCacheStats, cdiv
from pagedllm.core.request import Request


@dataclass(slots=True, frozen=True)
class ContiguousKVCacheStats(KVCacheStats):
    """``KVCacheStats`` plus what the reservation costs. All reserved slots count as allocated."""

    # NOTE: defaults only because dataclass fields after defaulted base fields need them; the manager
    # always fills every one.
    num_blocks_per_reservation: int = 0
    num_reservations: int = 0  # requests holding a reservation now
    num_unusable_blocks: int = 0  # the pool's remainder after whole reservations: never handed out
    num_tail_slots: int = 0  # unfilled slots of the blocks tokens have reached (what paging loses too)

    @property
    def num_reservation_waste_slots(self) -> int:
        """Reserved slots not holding a token: the unfilled tails plus every block no token reached yet."""
        return self.num_allocated_slots - self.num_tokens_stored

    @property
    def num_reserved_ahead_slots(self) -> int:
        """Slots of reserved blocks that no token has reached: what paging would not have taken yet."""
        return self.num_reservation_waste_slots - self.num_tail_slots

    @property
    def reservation_waste(self) -> float:
        """Fraction of the reserved slots holding no token (0.0 when nothing is reserved)."""
        if not self.num_allocated_slots:
            return 0.0
        return self.num_reservation_waste_slots / self.num_allocated_slots

    def as_dict(self) -> dict[str, float | int]:
        # NOTE: explicit base call: zero-argument super() breaks in slots=True dataclasses.
        d = KVCacheStats.as_dict(self)
        d.update(
            num_blocks_per_reservation=self.num_blocks_per_reservation,
            num_reservations=self.num_reservations,
            num_unusable_blocks=self.num_unusable_blocks,
            num_tail_slots=self.num_tail_slots,
            num_reserved_ahead_slots=self.num_reserved_ahead_slots,
            num_reservation_waste_slots=self.num_reservation_waste_slots,
            reservation_waste=self.reservation_waste,
        )
        return d


class ContiguousKVCacheManager(KVCacheManager):
    """Hands out one *slab* of ``cdiv(max_model_len, block_size)`` consecutive blocks per request.

    The pool is cut into ``num_blocks // blocks_per_reservation`` slabs; the remainder is never used
    (the external fragmentation a fixed-size reservation scheme pays). ``allocate`` takes the lowest free
    slab or returns None; ``append_slots`` never needs a block, so this policy never preempts; ``free``
    gives the whole slab back. Block tables still list the slab's blocks, so the worker and the attention
    backend run unchanged.
    """

    def __init__(self, num_blocks: int, block_size: int, max_model_len: int) -> None:
        super().__init__(num_blocks, block_size, enable_prefix_caching=False)
        if max_model_len < 1:
            raise ValueError(f"max_model_len must be >= 1, got {max_model_len}")
        self.max_model_len = max_model_len
        self.blocks_per_reservation = cdiv(max_model_len, block_size)
        self.num_slabs = num_blocks // self.blocks_per_reservation
        self._free_slabs = list(range(self.num_slabs))  # a heap: lowest slab first keeps the pool packed
        self._slab_of: dict[str, int] = {}

    @property
    def num_free_slabs(self) -> int:
        return len(self._free_slabs)

    def can_ever_fit(self, num_tokens: int) -> bool:
        return self.num_slabs >= 1 and num_tokens <= self.blocks_per_reservation * self.block_size

    def allocate(
        self, request: Request, num_new_tokens: int, computed_blocks: Sequence[KVCacheBlock] = ()
    ) -> list[KVCacheBlock] | None:
        """Reserve a whole slab for the request, whatever ``num_new_tokens`` is; None when none is free."""
        assert request.request_id not in self.block_tables, f"{request.request_id} already has blocks"
        assert not computed_blocks, "the contiguous policy has no prefix cache to hit"
        self._check_within_reservation(request, num_new_tokens)
        if not self._free_slabs:
            return None
        slab = heapq.heappop(self._free_slabs)
        start = slab * self.blocks_per_reservation
        blocks = self.pool.blocks[start : start + self.blocks_per_reservation]
        self.pool.touch(blocks)  # takes the slab's (free) blocks out of the free queue
        self.block_tables[request.request_id] = blocks
        self._block_ids[request.request_id] = tuple(block.block_id for block in blocks)
        self._slab_of[request.request_id] = slab
        return list(blocks)

    def append_slots(
        self, request: Request, num_new_tokens: int, num_computed_tokens: int | None = None
    ) -> list[KVCacheBlock] | None:
        """Growth is already paid for: always ``[]``."""
        assert request.request_id in self.block_tables, f"{request.request_id} holds no reservation"
        self._check_within_reservation(request, num_new_tokens, num_computed_tokens)
        return []

    def _check_within_reservation(
        self, request: Request, num_new_tokens: int, num_computed_tokens: int | None = None
    ) -> None:
        if num_computed_tokens is None:
            num_computed_tokens = request.num_computed_tokens
        num_tokens = num_computed_tokens + num_new_tokens
        # NOTE: the scheduler finishes every sequence at max_model_len, so this never fires; if it did,
        # returning None would make the scheduler preempt innocent requests for a block nobody can give.
        assert num_tokens <= self.blocks_per_reservation * self.block_size, (
            f"{request.request_id} needs {num_tokens} slots, beyond its reservation of "
            f"{self.blocks_per_reservation} blocks (max_model_len {self.max_model_len})"
        )

    def free(self, request: Request) -> None:
        super().free(request)
        slab = self._slab_of.pop(request.request_id, None)
        if slab is not None:
            heapq.heappush(self._free_slabs, slab)

    def fork(self, parent: Request, child: Request) -> None:
        # NOTE: a child would need its own slab plus a copy of the parent's blocks, and a fork cannot
        # fail the way admission can; the engine rejects n > 1 under this policy before it gets here.
        raise NotImplementedError("the contiguous KV policy does not fork sequences (n > 1)")

    def stats(self, requests: Sequence[Request]) -> ContiguousKVCacheStats:
        base = super().stats(requests)
        num_tail_slots = 0
        for request in requests:
            if request.request_id in self.block_tables:
                num_tokens = request.num_computed_tokens
                num_tail_slots += cdiv(num_tokens, self.block_size) * self.block_size - num_tokens
        # Copy the base fields by name so that fields added to KVCacheStats later come along.
        fields = {name: getattr(base, name) for name in KVCacheStats.__dataclass_fields__}
        return ContiguousKVCacheStats(
            **fields,
            num_blocks_per_reservation=self.blocks_per_reservation,
            num_reservations=len(self._slab_of),
            num_unusable_blocks=self.num_blocks - self.num_slabs * self.blocks_per_reservation,
            num_tail_slots=num_tail_slots,
        )

    def check_invariants(self) -> None:
        """The base invariants, and every table is exactly one slab, each slab either free or held once."""
        super().check_invariants()
        held = sorted(self._slab_of.values())
        assert len(set(held)) == len(held), "a slab is held by two requests"
        assert not set(held) & set(self._free_slabs), "a slab is both free and held"
        assert len(held) + len(self._free_slabs) == self.num_slabs, "slabs leaked"
        assert self._slab_of.keys() == self.block_tables.keys(), (
            "a table without a slab or a slab without one"
        )
        for request_id, slab in self._slab_of.items():
            start = slab * self.blocks_per_reservation
            expected = tuple(range(start, start + self.blocks_per_reservation))
            assert self.get_block_ids(request_id) == expected, f"{request_id} does not hold slab {slab}"
