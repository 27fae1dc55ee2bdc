"""Prefix caching and copy-on-write forks under random operations: a simulated pool checks, after
every step, that the block tables point at exactly the tokens each sequence wrote."""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pagedllm.core import KVCacheManager, Request, StopCriteria
from pagedllm.core.block_hash import hash_full_blocks

BLOCK_SIZE = 4
NUM_BLOCKS = 24
_ids = itertools.count()


class SharingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.kv = KVCacheManager(NUM_BLOCKS, BLOCK_SIZE, enable_prefix_caching=True)
        # What each physical block holds: the simulated K/V (a token id per slot, None = never written).
        self.contents: list[list[int | None]] = [[None] * BLOCK_SIZE for _ in range(NUM_BLOCKS)]
        self.running: list[Request] = []
        self.preempted: list[Request] = []
        self.cached_snapshot: dict[int, tuple[bytes, list[int | None]]] = {}

    # -- simulated worker ------------------------------------------------------------------------

    def _write(self, request: Request, num_new: int) -> None:
        """Apply the pending copies, then write the request's next tokens into their slots."""
        for src, dst in self.kv.take_block_copies():
            self.contents[dst] = list(self.contents[src])
        table = self.kv.block_tables[request.request_id]
        for pos in range(request.num_computed_tokens, request.num_computed_tokens + num_new):
            block = table[pos // BLOCK_SIZE]
            assert block.ref_cnt == 1, f"write into shared {block}"
            assert block.block_hash is None, f"write into cached {block}"
            self.contents[block.block_id][pos % BLOCK_SIZE] = request.all_token_ids[pos]
        request.num_computed_tokens += num_new
        self.kv.cache_full_blocks(request)

    def _admit(self, request: Request) -> bool:
        computed = self.kv.get_computed_blocks(request)
        num_computed = len(computed) * BLOCK_SIZE
        assert num_computed < request.num_tokens
        if self.kv.allocate(request, request.num_tokens - num_computed, computed) is None:
            return False
        request.num_computed_tokens = num_computed
        self._write(request, request.num_tokens - num_computed)
        self.running.append(request)
        return True

    # -- rules -----------------------------------------------------------------------------------

    @rule(
        prompt=st.lists(st.integers(0, 2), min_size=1, max_size=14),
        salt=st.sampled_from([None, None, "tenant-b"]),
    )
    def add(self, prompt: list[int], salt: str | None) -> None:
        # A tiny alphabet makes shared prefixes (and prefix hits) common.
        request = Request(f"r{next(_ids)}", prompt, StopCriteria(max_tokens=100), cache_salt=salt)
        self._admit(request)

    @precondition(lambda self: self.running)
    @rule(data=st.data(), token=st.integers(0, 2))
    def append(self, data: st.DataObject, token: int) -> None:
        request = data.draw(st.sampled_from(self.running))
        request.append_output_token(token)
        if self.kv.append_slots(request, 1) is None:
            self._preempt(request)
        else:
            self._write(request, 1)

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        parent = data.draw(st.sampled_from(self.running))
        child = Request(
            f"r{next(_ids)}",
            parent.prompt_token_ids,
            StopCriteria(max_tokens=100),
            cache_salt=parent.cache_salt,
        )
        for token in parent.output_token_ids:
            child.append_output_token(token)
        self.kv.fork(parent, child)
        child.num_computed_tokens = parent.num_computed_tokens
        self.running.append(child)

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(self.running))
        self.running.remove(request)
        self.kv.free(request)

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def preempt(self, data: st.DataObject) -> None:
        self._preempt(data.draw(st.sampled_from(self.running)))

    def _preempt(self, request: Request) -> None:
        self.running.remove(request)
        self.kv.free(request)
        request.num_computed_tokens = 0
        self.preempted.append(request)

    @precondition(lambda self: self.preempted)
    @rule()
    def resume(self) -> None:
        request = self.preempted[0]
        if self._admit(request):
            self.preempted.pop(0)

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def pool_is_consistent(self) -> None:
        self.kv.check_invariants()
        assert not self.kv._pending_copies, "copies recorded but never applied"

    @invariant()
    def every_sequence_reads_its_own_tokens(self) -> None:
        for request in self.running:
            table = self.kv.block_tables[request.request_id]
            for pos in range(request.num_computed_tokens):
                got = self.contents[table[pos // BLOCK_SIZE].block_id][pos % BLOCK_SIZE]
                assert got == request.all_token_ids[pos], f"{request.request_id} position {pos}"

    @invariant()
    def cached_blocks_match_their_hash_and_never_change(self) -> None:
        for request in self.running:
            table = self.kv.block_tables[request.request_id]
            hashes = hash_full_blocks(
                request.all_token_ids, BLOCK_SIZE, [], request.cache_salt, request.num_computed_tokens
            )
            for block, expected in zip(table, hashes, strict=False):
                assert block.block_hash in (None, expected), f"{block} cached under the wrong hash"
        for block_hash, block in self.kv.pool.cached_blocks.items():
            snapshot = self.cached_snapshot.get(block.block_id)
            if snapshot is not None and snapshot[0] == block_hash:
                assert self.contents[block.block_id] == snapshot[1], f"cached {block} was overwritten"
            else:
                self.cached_snapshot[block.block_id] = (block_hash, list(self.contents[block.block_id]))
            assert None not in self.contents[block.block_id], f"cached {block} is not full"


SharingMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestSharingInvariants = SharingMachine.TestCase


def _request(prompt: list[int], salt: str | None = None) -> Request:
    return Request(f"r{next(_ids)}", prompt, StopCriteria(max_tokens=10), cache_salt=salt)


def _admit(kv: KVCacheManager, request: Request) -> int:
    computed = kv.get_computed_blocks(request)
    num_computed = len(computed) * BLOCK_SIZE
    assert kv.allocate(request, request.num_tokens - num_computed, computed) is not None
    request.num_computed_tokens = request.num_tokens
    kv.cache_full_blocks(request)
    return num_computed


def test_second_request_reuses_the_cached_prefix_but_recomputes_its_last_token():
    kv = KVCacheManager(16, BLOCK_SIZE, enable_prefix_caching=True)
    first = _request(list(range(10)))
    assert _admit(kv, first) == 0
    assert _admit(kv, _request(list(range(10)))) == 8  # 2 full blocks; the last 2 tokens recomputed
    assert _admit(kv, _request(list(range(8)))) == 4  # a prompt of exactly 2 blocks reuses only 1
    assert _admit(kv, _request([*range(6), 99, 99])) == 4  # diverges inside the second block
    assert (kv.num_prefix_queries, kv.num_prefix_hits) == (36, 16)


def test_a_different_salt_never_shares_a_prefix():
    kv = KVCacheManager(16, BLOCK_SIZE, enable_prefix_caching=True)
    _admit(kv, _request(list(range(10)), salt="a"))
    assert _admit(kv, _request(list(range(10)), salt="b")) == 0
    assert _admit(kv, _request(list(range(10)), salt="a")) == 8


def test_freed_cached_blocks_stay_cached_until_evicted_least_recently_used_first():
    kv = KVCacheManager(4, BLOCK_SIZE, enable_prefix_caching=True)
    old, new = _request(list(range(5))), _request(list(range(50, 55)))
    _admit(kv, old)
    _admit(kv, new)
    kv.free(old)
    kv.free(new)
    assert len(kv.pool.cached_blocks) == 2 and kv.num_free_blocks == 4
    # `old` was freed first, so its blocks are the first reused: its prefix is evicted, `new`'s survives.
    _admit(kv, _request(list(range(100, 105))))
    assert kv.pool.num_evictions == 1
    assert kv.get_computed_blocks(_request(list(range(5)))) == []
    assert _admit(kv, _request(list(range(50, 55)))) == 4
    kv.check_invariants()


def test_fork_shares_the_partial_last_block_until_the_first_write():
    kv = KVCacheManager(8, BLOCK_SIZE)
    parent = _request(list(range(6)))
    _admit(kv, parent)
    child = _request(list(range(6)))
    kv.fork(parent, child)
    child.num_computed_tokens = 6
    stats = kv.stats([parent, child])
    assert (stats.num_shared_blocks, stats.num_blocks_saved_by_sharing, stats.num_used_blocks) == (2, 2, 2)
    assert kv.append_slots(child, 1) is not None  # writes slot 6: block 1 is shared, so it is copied
    (copy,) = kv.take_block_copies()
    assert copy[0] == kv.get_block_ids(parent.request_id)[1]
    assert kv.get_block_ids(child.request_id)[0] == kv.get_block_ids(parent.request_id)[0]
    assert kv.get_block_ids(child.request_id)[1] == copy[1] != copy[0]
    assert kv.append_slots(parent, 1) == []  # the parent is the only owner now: writes in place
    assert kv.take_block_copies() == []
    kv.free(child)
    kv.free(parent)
    assert kv.num_free_blocks == 8
    kv.check_invariants()


def test_copy_on_write_fails_cleanly_when_no_block_is_free():
    kv = KVCacheManager(2, BLOCK_SIZE)
    parent = _request(list(range(6)))
    _admit(kv, parent)
    child = _request(list(range(6)))
    kv.fork(parent, child)
    child.num_computed_tokens = 6
    assert kv.append_slots(child, 1) is None
    assert kv.take_block_copies() == []
    kv.check_invariants()
