"""The host side of a captured decode step: a pure-decode step's inputs packed into pinned staging.

Per step the graph needs each row's input id, position, KV slot and length, and the rows' block tables.
The packer keeps its own copy of the tables it has packed, row by row, with the block-id tuple each row
holds: the KV manager hands out one tuple per table for as long as the table is unchanged, so a row whose
request brings the same tuple again is not rewritten. A decode step's table changes once every
``block_size`` tokens; writing every row of a 256-row step again cost ~0.3 ms of host time a step
(issue 6), now the loop only compares objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pagedllm.core.scheduler_output import ScheduledRequest


class DecodeInputPacker:
    def __init__(
        self, max_batch_size: int, max_blocks_per_seq: int, block_size: int, pin_memory: bool
    ) -> None:
        n = max_batch_size
        self.block_size = block_size
        self._tables = np.zeros((n, max_blocks_per_seq), dtype=np.int32)
        self._rows: list[Sequence[int] | None] = [None] * n  # the block ids each row of _tables holds
        # The step's vectors: ids, positions and slots in one int64 array (a row each, copied to the
        # device in one go), lengths in an int32 one; and its tables packed [n, width] at the front.
        # Pinned, so the copies never wait for the GPU (a copy from pageable memory may).
        # NOTE: two of each, used in turn: with async scheduling the host packs the next step while the
        # copy out of the previous one may still wait in the stream behind the step before it.
        self._vectors = [torch.empty(3, n, dtype=torch.int64, pin_memory=pin_memory) for _ in range(2)]
        self._lens = [torch.empty(n, dtype=torch.int32, pin_memory=pin_memory) for _ in range(2)]
        self._table_staging = [
            torch.empty(n * max_blocks_per_seq, dtype=torch.int32, pin_memory=pin_memory) for _ in range(2)
        ]
        self._num_packed = 0

    def pack(self, scheduled: list[ScheduledRequest], batch_size: int) -> DecodeInputs:
        """One pure-decode step of ``len(scheduled) <= batch_size`` rows, padded to ``batch_size``: a
        padding row has id 0, position 0, slot -1 (stores nothing) and length 1. The rows past
        ``batch_size`` hold whatever they held: no graph of this batch size reads them."""
        n = len(scheduled)
        bs = self.block_size
        tables, rows = self._tables, self._rows
        for row, item in enumerate(scheduled):
            block_ids = item.block_ids
            if block_ids is not rows[row]:
                tables[row, : len(block_ids)] = block_ids
                # NOTE: only a tuple is known not to change while it is kept (the KV manager's are).
                rows[row] = block_ids if type(block_ids) is tuple else None
        positions = np.fromiter((s.start_position for s in scheduled), dtype=np.int64, count=n)
        # The blocks the step reads: up to the one its newest token lands in. Entries past a row's own
        # table are stale and never read.
        width = int(positions.max()) // bs + 1
        buffer = self._num_packed % 2
        self._num_packed += 1
        tables_tensor = self._table_staging[buffer][: n * width].view(n, width)
        packed_tables = tables_tensor.numpy()
        packed_tables[:] = tables[:n, :width]

        vectors, lens_tensor = self._vectors[buffer], self._lens[buffer]
        ids, pos, slots = vectors.numpy()
        lens = lens_tensor.numpy()
        ids[:n] = np.fromiter((s.token_ids[0] for s in scheduled), dtype=np.int64, count=n)
        ids[n:batch_size] = 0
        pos[:n] = positions
        pos[n:batch_size] = 0
        slots[:n] = packed_tables[np.arange(n), positions // bs].astype(np.int64) * bs + positions % bs
        slots[n:batch_size] = -1
        lens[:n] = positions + 1
        lens[n:batch_size] = 1
        return DecodeInputs(vectors, lens_tensor, tables_tensor)


@dataclass(slots=True)
class DecodeInputs:
    """A packed step, on the host."""

    vectors: torch.Tensor  # [3, max_batch_size] int64: input ids, positions, slots
    seq_lens: torch.Tensor  # [max_batch_size] int32
    block_tables: torch.Tensor  # [num_seqs, width] int32
