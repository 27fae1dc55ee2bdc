"""Block tables: which physical blocks hold each sequence's KV, taken from the pool as tokens arrive.

Blocks are shared two ways. Prefix caching: a full block is registered under a hash chained from its
prefix, and a new request reuses the longest run of cached blocks matching its tokens. Forks: a child
sequence starts with its parent's whole table, partly filled last block included. A shared block is
never written: ``append_slots`` gives the writer a private copy first and records the copy, which the
worker applies before the step's attention runs (copy-on-write).

Swap space: with ``num_cpu_blocks > 0`` a second pool of blocks lives in (pinned) CPU memory. A
preempted request whose blocks are all private can move them there (``swap_out``) and back
(``swap_in``); the manager hands the scheduler the (src, dst) block pairs and the worker moves the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pagedllm.core.block_hash import BlockHash, hash_full_blocks
from pagedllm.core.block_pool import BlockPool, KVCacheBlock
from pagedllm.core.request import Request


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(slots=True, frozen=True)
class KVCacheStats:
    num_blocks: int
    num_free_blocks: int
    block_size: int
    num_tokens_stored: int  # tokens whose K/V sit in the pool (a shared block's tokens count once)
    num_allocated_slots: int  # slots of the blocks sequences hold (a shared block counts once)
    num_shared_blocks: int = 0  # blocks referenced by more than one sequence
    num_blocks_saved_by_sharing: int = 0  # blocks the sequences would hold unshared, minus held
    num_cached_blocks: int = 0  # blocks registered in the prefix cache (held or free)
    num_cpu_blocks: int = 0  # blocks of the CPU swap space
    num_free_cpu_blocks: int = 0

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
            "num_shared_blocks": self.num_shared_blocks,
            "num_blocks_saved_by_sharing": self.num_blocks_saved_by_sharing,
            "num_cached_blocks": self.num_cached_blocks,
            "num_cpu_blocks": self.num_cpu_blocks,
            "num_free_cpu_blocks": self.num_free_cpu_blocks,
            "utilization": self.utilization,
            "usage": self.usage,
        }


class KVCacheManager:
    """Owns one block table per request and grows it on demand: no slot is reserved ahead of need.

    ``allocate`` (admission) and ``append_slots`` (growth) return the new blocks, or None when the pool
    cannot serve them; then nothing was taken, and the scheduler decides whom to preempt.
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        enable_prefix_caching: bool = False,
        num_cpu_blocks: int = 0,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if num_cpu_blocks < 0:
            raise ValueError(f"num_cpu_blocks must be >= 0, got {num_cpu_blocks}")
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.pool = BlockPool(num_blocks)
        self.block_tables: dict[str, list[KVCacheBlock]] = {}
        # The same tables as block ids, kept in step with ``block_tables``: the scheduler hands every
        # running request's ids to the worker each step (issue 6: per-step host time). Tuples, replaced
        # whenever a table changes and never changed in place: handing one out needs no copy, and a
        # worker that kept the last one it saw knows the table is unchanged when it gets the same object.
        self._block_ids: dict[str, tuple[int, ...]] = {}
        # The swap space: CPU blocks, and the tables of swapped-out requests (each block private, ref 1).
        self.cpu_pool: BlockPool | None = BlockPool(num_cpu_blocks) if num_cpu_blocks else None
        self.swapped_tables: dict[str, list[KVCacheBlock]] = {}
        # Hashes of each request's full blocks, extended as tokens are computed (prefix caching only).
        self._block_hashes: dict[str, list[BlockHash]] = {}
        # How many leading blocks of each table were offered to the prefix cache (cache_full_blocks).
        self._num_registered: dict[str, int] = {}
        # (src, dst) block ids to copy before the next forward pass: copy-on-write of shared blocks.
        self._pending_copies: list[tuple[int, int]] = []
        # Prefix-cache counters in tokens, like vLLM's: tokens looked up, tokens found.
        self.num_prefix_queries = 0
        self.num_prefix_hits = 0

    @property
    def num_blocks(self) -> int:
        return self.pool.num_blocks

    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free_blocks

    def can_ever_fit(self, num_tokens: int) -> bool:
        """Whether a sequence of ``num_tokens`` fits in the whole pool, all other sequences gone."""
        return cdiv(num_tokens, self.block_size) <= self.num_blocks

    # -- admission -------------------------------------------------------------------------------

    def get_computed_blocks(self, request: Request) -> list[KVCacheBlock]:
        """The longest run of cached blocks matching the request's tokens.

        NOTE: at most ``(num_tokens - 1) // block_size`` blocks, so at least the last token is computed
        (its logits are needed) and it never lands in a cached block, which must stay immutable.
        """
        if not self.enable_prefix_caching:
            return []
        hashes = self._hashes_for(request)
        max_blocks = (request.num_tokens - 1) // self.block_size
        hits: list[KVCacheBlock] = []
        for block_hash in hashes[:max_blocks]:
            block = self.pool.get_cached_block(block_hash)
            if block is None:
                break
            hits.append(block)
        return hits

    def hashes_filled_by(self, request: Request, start: int, num_tokens: int) -> list[BlockHash]:
        """The hashes of the blocks that computing the request's known tokens ``start`` to
        ``start + num_tokens`` fills; [] without prefix caching."""
        if not self.enable_prefix_caching:
            return []
        end = min(start + num_tokens, request.num_tokens)
        return self._hashes_for(request, end)[start // self.block_size : end // self.block_size]

    def next_block_hash(self, request: Request, num_hits: int) -> BlockHash | None:
        """The hash of the block after the request's ``num_hits`` prefix hits, if that block could be a
        hit too (see ``get_computed_blocks``); None without prefix caching."""
        if not self.enable_prefix_caching or num_hits >= (request.num_tokens - 1) // self.block_size:
            return None
        return self._hashes_for(request)[num_hits]

    def hash_full_blocks_ahead(self, request: Request) -> None:
        """Computes and keeps the hashes of a waiting request's full blocks, which ``get_computed_blocks``
        would otherwise compute at its admission. A no-op without prefix caching."""
        if self.enable_prefix_caching:
            self._hashes_for(request)

    def allocate(
        self, request: Request, num_new_tokens: int, computed_blocks: Sequence[KVCacheBlock] = ()
    ) -> list[KVCacheBlock] | None:
        """Admit a waiting request: share ``computed_blocks`` (a prefix hit), then take blocks for the
        ``num_new_tokens`` tokens after them."""
        assert request.request_id not in self.block_tables, f"{request.request_id} already has blocks"
        num_computed = len(computed_blocks) * self.block_size
        num_needed = cdiv(num_computed + num_new_tokens, self.block_size) - len(computed_blocks)
        # Reviving a free cached block takes it out of the free queue too.
        num_revived = sum(1 for block in computed_blocks if block.ref_cnt == 0)
        if num_needed + num_revived > self.pool.num_free_blocks:
            return None
        self.pool.touch(computed_blocks)
        new_blocks = self.pool.get_new_blocks(num_needed)
        table = [*computed_blocks, *new_blocks]
        self.block_tables[request.request_id] = table
        self._block_ids[request.request_id] = tuple(block.block_id for block in table)
        if self.enable_prefix_caching:
            self.num_prefix_queries += request.num_tokens
            self.num_prefix_hits += num_computed
        return new_blocks

    # -- growth ----------------------------------------------------------------------------------

    def append_slots(
        self, request: Request, num_new_tokens: int, num_computed_tokens: int | None = None
    ) -> list[KVCacheBlock] | None:
        """Grow a request's table to hold ``num_computed_tokens + num_new_tokens`` tokens, copying the
        block the first new token lands in if other sequences share it. ``num_computed_tokens`` defaults
        to the request's (async scheduling passes the count it will have once the step in flight ends)."""
        table = self.block_tables[request.request_id]
        num_computed = request.num_computed_tokens if num_computed_tokens is None else num_computed_tokens
        block_size = self.block_size
        num_needed = (num_computed + num_new_tokens + block_size - 1) // block_size - len(table)
        write_index = num_computed // block_size
        if num_needed <= 0 and table[write_index].ref_cnt == 1:
            # The common decode step: the token lands in a private block the table already has (the
            # only blocks past the write are, as the NOTE below says, private too).
            return []
        needs_copy = write_index < len(table) and table[write_index].ref_cnt > 1
        # NOTE: forks happen between steps, when a table ends at the block of the next write, so only
        # that one block can be shared among the blocks this step writes.
        assert all(block.ref_cnt == 1 for block in table[write_index + 1 :]), "shared block past the write"
        if max(num_needed, 0) + needs_copy > self.pool.num_free_blocks:
            return None
        new_blocks: list[KVCacheBlock] = []
        # NOTE: a new tuple, never an edit (see ``_block_ids``).
        block_ids = self._block_ids[request.request_id]
        if needs_copy:
            shared = table[write_index]
            (private,) = self.pool.get_new_blocks(1)
            self._pending_copies.append((shared.block_id, private.block_id))
            self.pool.free_blocks([shared])  # drops this sequence's reference only
            table[write_index] = private
            block_ids = (*block_ids[:write_index], private.block_id, *block_ids[write_index + 1 :])
            new_blocks.append(private)
        if num_needed > 0:
            grown = self.pool.get_new_blocks(num_needed)
            table.extend(grown)
            block_ids += tuple(block.block_id for block in grown)
            new_blocks.extend(grown)
        self._block_ids[request.request_id] = block_ids
        return new_blocks

    def append_decode_slots(self, requests: Sequence[Request]) -> list[tuple[int, ...]] | None:
        """A slot for each request's next token, the one after all its known tokens (a decode step
        scheduled ahead); their tables as block ids. None when a slot cannot be had: the slots taken for
        the requests before stay in their tables (see ``Scheduler.schedule_ahead``).

        NOTE: once per running request per step: ``append_slots``'s common case (the token lands in a
        private block the table has) is checked inline, the rest goes through it.
        """
        tables, block_ids, block_size = self.block_tables, self._block_ids, self.block_size
        out = []
        for request in requests:
            request_id = request.request_id
            position = len(request.all_token_ids)
            table = tables[request_id]
            write_index = position // block_size
            if (write_index >= len(table) or table[write_index].ref_cnt != 1) and self.append_slots(
                request, 1, position
            ) is None:
                return None
            out.append(block_ids[request_id])
        return out

    def fork(self, parent: Request, child: Request) -> None:
        """Give ``child`` the parent's whole block table, every block shared (ref counts + 1)."""
        assert child.request_id not in self.block_tables, f"{child.request_id} already has blocks"
        table = self.block_tables[parent.request_id]
        self.pool.touch(table)
        self.block_tables[child.request_id] = list(table)
        self._block_ids[child.request_id] = self._block_ids[parent.request_id]
        if parent.request_id in self._block_hashes:
            self._block_hashes[child.request_id] = list(self._block_hashes[parent.request_id])
        if parent.request_id in self._num_registered:
            self._num_registered[child.request_id] = self._num_registered[parent.request_id]

    def cache_full_blocks(self, request: Request) -> None:
        """Register the request's newly computed full blocks in the prefix cache.

        NOTE: by computed tokens, not by known hashes: a prompt's hashes are all known from admission,
        but a chunk that ends inside a block has not written the rest of it, and a cached block may be
        read by any request that matches its hash.
        """
        if not self.enable_prefix_caching:
            return
        start = self._num_registered.get(request.request_id, 0)
        if request.num_computed_tokens // self.block_size <= start:
            return  # the common decode step (once per sequence per step): no block filled up
        table = self.block_tables.get(request.request_id)
        if table is None:
            return
        num_full = min(request.num_computed_tokens // self.block_size, len(table))
        if num_full <= start:
            return
        hashes = self._hashes_for(request, request.num_computed_tokens)
        for index in range(start, num_full):
            if table[index].block_hash is None:
                self.pool.cache_block(table[index], hashes[index])
        self._num_registered[request.request_id] = num_full

    def _hashes_for(self, request: Request, num_tokens: int | None = None) -> list[BlockHash]:
        known = self._block_hashes.setdefault(request.request_id, [])
        return hash_full_blocks(request.all_token_ids, self.block_size, known, request.cache_salt, num_tokens)

    # -- swap space ------------------------------------------------------------------------------

    @property
    def num_cpu_blocks(self) -> int:
        return 0 if self.cpu_pool is None else self.cpu_pool.num_blocks

    @property
    def num_free_cpu_blocks(self) -> int:
        return 0 if self.cpu_pool is None else self.cpu_pool.num_free_blocks

    def has_shared_blocks(self, request: Request) -> bool:
        """Whether another sequence (a fork, or a prefix-cache hit) references one of its blocks."""
        return any(block.ref_cnt > 1 for block in self.block_tables.get(request.request_id, ()))

    def can_swap_out(self, request: Request) -> bool:
        """The request's blocks are all private and the swap space has room for every one of them.

        NOTE: shared blocks are never swapped: the others still read them on the GPU, and a second copy
        on the CPU would break "one physical copy per block". Such a request is recomputed instead; its
        full shared blocks stay in the prefix cache, so the recompute reuses them.
        """
        table = self.block_tables.get(request.request_id)
        if self.cpu_pool is None or not table or self.has_shared_blocks(request):
            return False
        return len(table) <= self.cpu_pool.num_free_blocks

    def swap_out(self, request: Request) -> list[tuple[int, int]]:
        """Move the request's blocks to the swap space; returns the (gpu, cpu) block pairs to copy.

        The GPU blocks are freed at once: the worker copies them out before this step writes anything.
        A freed block that is cached stays in the prefix cache (its bytes are still valid).
        """
        assert self.can_swap_out(request), f"{request.request_id} cannot be swapped out"
        assert self.cpu_pool is not None
        table = self.block_tables.pop(request.request_id)
        del self._block_ids[request.request_id]
        assert not any(dst == block.block_id for block in table for _, dst in self._pending_copies), (
            "a block with a pending copy-on-write copy is swapped out"
        )
        cpu_blocks = self.cpu_pool.get_new_blocks(len(table))
        self.swapped_tables[request.request_id] = cpu_blocks
        # The blocks it swaps back into are new: register them in the prefix cache again from the start.
        self._num_registered.pop(request.request_id, None)
        self.pool.free_blocks(reversed(table))
        return [(gpu.block_id, cpu.block_id) for gpu, cpu in zip(table, cpu_blocks, strict=True)]

    def num_blocks_to_swap_in(self, request: Request) -> int:
        return len(self.swapped_tables[request.request_id])

    def swap_in(self, request: Request) -> list[tuple[int, int]] | None:
        """Bring a swapped request's blocks back into the GPU pool; returns the (cpu, gpu) pairs to copy,
        or None (nothing taken) when the pool lacks free blocks."""
        assert self.cpu_pool is not None
        cpu_blocks = self.swapped_tables[request.request_id]
        if len(cpu_blocks) > self.pool.num_free_blocks:
            return None
        del self.swapped_tables[request.request_id]
        gpu_blocks = self.pool.get_new_blocks(len(cpu_blocks))
        self.block_tables[request.request_id] = gpu_blocks
        self._block_ids[request.request_id] = tuple(block.block_id for block in gpu_blocks)
        self.cpu_pool.free_blocks(reversed(cpu_blocks))
        return [(cpu.block_id, gpu.block_id) for cpu, gpu in zip(cpu_blocks, gpu_blocks, strict=True)]

    # -- release ---------------------------------------------------------------------------------

    def free(self, request: Request) -> None:
        """Release every block reference the request holds, on the GPU or in the swap space (a request
        without blocks is a no-op)."""
        self._block_hashes.pop(request.request_id, None)
        self._num_registered.pop(request.request_id, None)
        swapped = self.swapped_tables.pop(request.request_id, None)
        if swapped is not None:
            assert self.cpu_pool is not None
            self.cpu_pool.free_blocks(reversed(swapped))
        table = self.block_tables.pop(request.request_id, None)
        self._block_ids.pop(request.request_id, None)
        if not table:
            return
        if self._pending_copies:
            # A copy into a block this request no longer holds would be wasted work.
            mine = {block.block_id for block in table if block.ref_cnt == 1}
            self._pending_copies = [(s, d) for s, d in self._pending_copies if d not in mine]
        self.pool.free_blocks(reversed(table))

    def take_block_copies(self) -> list[tuple[int, int]]:
        copies, self._pending_copies = self._pending_copies, []
        return copies

    # -- observability ---------------------------------------------------------------------------

    def get_block_ids(self, request_id: str) -> tuple[int, ...]:
        """The request's table as block ids: the same object for as long as the table is unchanged."""
        return self._block_ids[request_id]

    def stats(self, requests: Sequence[Request]) -> KVCacheStats:
        """Pool occupancy; ``requests`` are the ones holding blocks (their computed tokens are stored)."""
        filled: dict[int, int] = {}  # block id -> slots holding tokens
        for request in requests:
            table = self.block_tables.get(request.request_id)
            if table is None:
                continue
            remaining = request.num_computed_tokens
            for block in table:
                count = min(self.block_size, max(remaining, 0))
                filled[block.block_id] = max(filled.get(block.block_id, 0), count)
                remaining -= self.block_size
        num_held = len({block.block_id for table in self.block_tables.values() for block in table})
        return KVCacheStats(
            num_blocks=self.num_blocks,
            num_free_blocks=self.num_free_blocks,
            block_size=self.block_size,
            num_tokens_stored=sum(filled.values()),
            num_allocated_slots=num_held * self.block_size,
            num_shared_blocks=sum(1 for block in self.pool.blocks if block.ref_cnt > 1),
            num_blocks_saved_by_sharing=sum(len(t) for t in self.block_tables.values()) - num_held,
            num_cached_blocks=len(self.pool.cached_blocks),
            num_cpu_blocks=self.num_cpu_blocks,
            num_free_cpu_blocks=self.num_free_cpu_blocks,
        )

    def check_invariants(self) -> None:
        """free + referenced == num_blocks, and every ref count equals the tables that hold the block."""
        self.pool.check_invariants()
        counts: dict[int, int] = {}
        assert self._block_ids.keys() == self.block_tables.keys(), "block id tables out of step"
        for request_id, table in self.block_tables.items():
            assert self._block_ids[request_id] == tuple(b.block_id for b in table), f"{request_id}: stale ids"
            for block in table:
                counts[block.block_id] = counts.get(block.block_id, 0) + 1
        for block in self.pool.blocks:
            expected = counts.get(block.block_id, 0)
            assert block.ref_cnt == expected, f"{block} held by {expected} tables"
        assert self.num_free_blocks + len(counts) == self.num_blocks, "blocks leaked"
        assert not self.block_tables.keys() & self.swapped_tables.keys(), "a request both on GPU and swapped"
        if self.cpu_pool is None:
            assert not self.swapped_tables, "swapped tables without a swap space"
            return
        self.cpu_pool.check_invariants()
        cpu_ids = [block.block_id for table in self.swapped_tables.values() for block in table]
        assert len(set(cpu_ids)) == len(cpu_ids), "a swap slot held twice"
        for block in self.cpu_pool.blocks:
            assert block.ref_cnt == (block.block_id in cpu_ids), f"swap slot {block} miscounted"
            assert block.block_hash is None, "a swap slot in the prefix cache"
        assert self.num_free_cpu_blocks + len(cpu_ids) == self.num_cpu_blocks, "swap slots leaked"
