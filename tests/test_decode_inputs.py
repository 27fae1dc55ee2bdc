"""The captured decode step's host-side inputs (``DecodeInputPacker``) equal the eager path's
(``build_model_inputs``) for the same steps, while the packer skips the table rows it already holds:
tables that grow, rows that change hands as requests finish, copy-on-write after a fork, padding rows."""

from __future__ import annotations

import itertools
import random

import torch

from pagedllm.core import KVCacheManager, Request, Scheduler, SchedulerConfig, StopCriteria
from pagedllm.core.scheduler_output import ScheduledRequest
from pagedllm.worker.cuda_graphs import batch_size_ladder
from pagedllm.worker.decode_inputs import DecodeInputPacker
from pagedllm.worker.model_inputs import build_model_inputs

BLOCK_SIZE = 4
MAX_MODEL_LEN = 64
MAX_SEQS = 12


def _decode_steps(seed: int) -> list[list[ScheduledRequest]]:
    """The pure-decode steps of a scheduler run as the async engine drives it: each step scheduled
    ahead of the one before where it can be, else after it; requests of different lengths finishing at
    different steps and arriving late, some forking children (parallel sampling) that share blocks."""
    rng = random.Random(seed)
    config = SchedulerConfig(
        max_num_seqs=MAX_SEQS,
        max_num_batched_tokens=64,
        max_model_len=MAX_MODEL_LEN,
        enable_chunked_prefill=True,
    )
    scheduler = Scheduler(config, KVCacheManager(160, BLOCK_SIZE, enable_prefix_caching=True))
    pending = list(range(16))
    steps: list[list[ScheduledRequest]] = []

    def add(i: int) -> None:
        prompt = [rng.randrange(1, 50) for _ in range(rng.randint(1, 18))]
        request = Request(f"r{i}", prompt, StopCriteria(max_tokens=rng.randint(2, 30)))
        scheduler.add_request(request)
        if i % 5 == 0:
            children = [
                Request(f"r{i}-{c}", prompt, StopCriteria(max_tokens=rng.randint(2, 30))) for c in (1, 2)
            ]
            scheduler.add_fork_children(request.request_id, children)

    for _ in range(6):
        add(pending.pop(0))
    in_flight = scheduler.schedule()
    while scheduler.has_unfinished_requests() or in_flight.scheduled:
        ahead = scheduler.schedule_ahead(in_flight) if in_flight.scheduled else None
        tokens = {s.request_id: rng.randrange(50, 60) for s in in_flight.scheduled if s.needs_sample}
        for s in in_flight.scheduled:
            tokens.update({child: rng.randrange(50, 60) for child in s.fork_request_ids})
        scheduler.update_from_output(in_flight, tokens)
        scheduler.check_invariants()
        if pending and rng.random() < 0.3:
            add(pending.pop(0))
        in_flight = ahead if ahead is not None else scheduler.schedule()
        if in_flight.scheduled and all(s.num_tokens == 1 for s in in_flight.scheduled):
            steps.append(in_flight.scheduled)
        if not scheduler.has_unfinished_requests() and ahead is None:
            break
    return steps


def _check_step(packer: DecodeInputPacker, scheduled: list[ScheduledRequest]) -> None:
    n = len(scheduled)
    batch_size = next(s for s in batch_size_ladder(MAX_SEQS) if s >= n)
    packed = packer.pack(scheduled, batch_size)
    ids, positions, slots = packed.vectors.numpy()[:, :batch_size].copy()
    lens = packed.seq_lens.numpy()[:batch_size].copy()
    tables = packed.block_tables.numpy().copy()
    eager = build_model_inputs(scheduled, BLOCK_SIZE, torch.device("cpu"))
    meta = eager.attn_metadata
    assert ids[:n].tolist() == eager.input_ids.tolist()
    assert positions[:n].tolist() == eager.positions.tolist()
    assert slots[:n].tolist() == meta.slot_mapping.tolist()
    assert lens[:n].tolist() == meta.seq_lens.tolist()
    # Padding rows: no slot (nothing stored), one token of attention.
    assert ids[n:].tolist() == [0] * (batch_size - n) and slots[n:].tolist() == [-1] * (batch_size - n)
    assert lens[n:].tolist() == [1] * (batch_size - n)
    for row, length in enumerate(meta.seq_lens.tolist()):
        num_read = -(-length // BLOCK_SIZE)  # the blocks attention reads
        assert tables[row, :num_read].tolist() == meta.block_tables[row, :num_read].tolist(), f"row {row}"


def test_packed_decode_steps_equal_the_eager_inputs_as_tables_grow_change_rows_and_copy_on_write():
    steps = [step for seed in range(4) for step in _decode_steps(seed)]
    # The run covers what the packer must notice: rows changing hands, tables growing, and children
    # decoding on blocks shared with their parent (their first write copies the shared block).
    rows = [(a, b) for x, y in itertools.pairwise(steps) for a, b in zip(x, y, strict=False)]
    assert any(a.request_id != b.request_id for a, b in rows)
    assert any(a.request_id == b.request_id and a.block_ids != b.block_ids for a, b in rows)
    assert any("-" in s.request_id for step in steps for s in step)
    packer = DecodeInputPacker(MAX_SEQS, -(-MAX_MODEL_LEN // BLOCK_SIZE), BLOCK_SIZE, pin_memory=False)
    for scheduled in steps:
        _check_step(packer, scheduled)


def test_a_block_id_list_is_read_again_every_step_since_it_can_change_in_place():
    packer = DecodeInputPacker(4, 8, BLOCK_SIZE, pin_memory=False)
    block_ids = [3, 5]
    step = [ScheduledRequest("a", [7], 5, block_ids, True, arrival_order=0)]
    _check_step(packer, step)
    block_ids[1] = 6  # copy-on-write done to a list in place: the packer must not trust its cache
    _check_step(packer, step)
    slots = packer.pack(step, 1).vectors.numpy()[2]
    assert slots[0] == 6 * BLOCK_SIZE + 1  # the slot of position 5 is in block 6 now


def test_a_row_that_changes_hands_is_rewritten_even_with_a_shorter_table():
    packer = DecodeInputPacker(4, 8, BLOCK_SIZE, pin_memory=False)
    _check_step(packer, [ScheduledRequest("a", [1], 9, (1, 2, 3), True, arrival_order=0)])
    _check_step(packer, [ScheduledRequest("b", [1], 2, (7,), True, arrival_order=1)])
    tables = packer.pack([ScheduledRequest("b", [1], 2, (7,), True, arrival_order=1)], 1).block_tables
    assert tables.tolist() == [[7]]
