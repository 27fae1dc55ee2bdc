"""CUDA graphs for pure-decode steps: one graph per batch size of a ladder, replayed on static buffers.

A decode step launches a few hundred small kernels (per layer: norms, projections, rotary, K/V write,
attention, MLP); at small models and large batches their launch gaps cost as much as the kernels.
Each graph holds the whole forward pass plus the logits for ``batch_size`` sequences of one new token.
A step of ``n`` sequences replays the smallest graph of at least ``n`` rows; the padding rows store
nothing (``slot_mapping`` -1) and attend over one token of whatever block their stale table row names,
and their logits are never read.

NOTE: the decode kernel's split count is fixed at capture from ``max_model_len`` (the grid may not
change between replays); each program reads its sequence's real length on the device.
"""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.core.scheduler_output import ScheduledRequest

logger = logging.getLogger(__name__)


def batch_size_ladder(max_batch_size: int) -> list[int]:
    """1, 2, 4, 8, then every multiple of 16 up to ``max_batch_size`` (always included)."""
    sizes = [s for s in (1, 2, 4, 8) if s < max_batch_size]
    sizes += list(range(16, max_batch_size, 16))
    return sorted({*sizes, max_batch_size})


class DecodeGraphs:
    """Captured decode steps for every batch size of the ladder, sharing one memory pool."""

    def __init__(
        self,
        model: nn.Module,
        kv_caches: list[torch.Tensor],
        backend: AttentionBackend,
        device: torch.device,
        block_size: int,
        max_batch_size: int,
        max_model_len: int,
    ) -> None:
        self.model = model
        self.kv_caches = kv_caches
        self.backend = backend
        self.device = device
        self.block_size = block_size
        self.max_model_len = max_model_len
        self.batch_sizes = batch_size_ladder(max_batch_size)
        self.max_batch_size = self.batch_sizes[-1]
        self.max_blocks_per_seq = -(-max_model_len // block_size)
        n = self.max_batch_size
        # Static inputs: every graph reads prefixes of these.
        self.input_ids = torch.zeros(n, dtype=torch.int64, device=device)
        self.positions = torch.zeros(n, dtype=torch.int64, device=device)
        self.slot_mapping = torch.full((n,), -1, dtype=torch.int64, device=device)
        self.seq_lens = torch.ones(n, dtype=torch.int32, device=device)
        self.query_start_loc = torch.arange(n + 1, dtype=torch.int32, device=device)
        # NOTE: zeros, and only ever overwritten with real block ids: a padding row's stale table
        # row always names a block that exists.
        self.block_tables = torch.zeros(n, self.max_blocks_per_seq, dtype=torch.int32, device=device)
        # Pinned staging rows for the step's small vectors: a single host-to-device copy per step.
        # NOTE: two, used in turn: with async scheduling the host fills the next step's row while the
        # copy out of the previous one may still wait in the stream behind the step before it.
        self._staging = [torch.empty(4 * n, dtype=torch.int64, pin_memory=True) for _ in range(2)]
        # The step's block tables, packed [n, width] at the front; pinned, so the copy never waits for
        # the GPU (a copy from pageable memory may), and two for the reason above.
        self._table_staging = [
            torch.empty(n * self.max_blocks_per_seq, dtype=torch.int32, pin_memory=True) for _ in range(2)
        ]
        self._num_runs = 0
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._logits: dict[int, torch.Tensor] = {}
        self._keepalive: list[torch.Tensor] = []

    def _metadata(self, batch_size: int) -> AttentionMetadata:
        return AttentionMetadata(
            slot_mapping=self.slot_mapping[:batch_size],
            block_tables=self.block_tables[:batch_size],
            query_start_loc=self.query_start_loc[: batch_size + 1],
            seq_lens=self.seq_lens[:batch_size],
            max_query_len=1,
            # Fixes the decode kernel's split count for this graph (see the module's NOTE).
            max_seq_len=self.max_model_len,
            query_start_loc_host=list(range(batch_size + 1)),
            seq_lens_host=[1] * batch_size,
        )

    def _forward(self, batch_size: int) -> torch.Tensor:
        with forward_context(self._metadata(batch_size), self.kv_caches, self.backend):
            hidden = self.model(self.input_ids[:batch_size], self.positions[:batch_size])
        return self.model.compute_logits(hidden)  # type: ignore[operator, no-any-return]

    @torch.inference_mode()
    def capture(self) -> None:
        start = time.perf_counter()
        # Warm every size eagerly first: compiles the kernels and grows the attention workspace to its
        # final size, so no capture sees an allocation that a later one frees.
        for batch_size in reversed(self.batch_sizes):
            self._forward(batch_size)
        torch.cuda.synchronize(self.device)
        from pagedllm.attention.triton import decode as triton_decode

        # The captured kernels address this workspace: keep it alive whatever eager steps grow later.
        self._keepalive = list(triton_decode._WORKSPACES.values())
        pool = torch.cuda.graph_pool_handle()
        for batch_size in reversed(self.batch_sizes):  # largest first: the pool is sized once
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                self._logits[batch_size] = self._forward(batch_size)
            self._graphs[batch_size] = graph
        torch.cuda.synchronize(self.device)
        logger.info(
            "captured %d decode graphs (batch sizes %s) in %.1f s",
            len(self._graphs),
            self.batch_sizes,
            time.perf_counter() - start,
        )

    def can_run(self, scheduled: list[ScheduledRequest]) -> bool:
        return len(scheduled) <= self.max_batch_size and all(s.num_tokens == 1 for s in scheduled)

    def run(
        self,
        scheduled: list[ScheduledRequest],
        previous_tokens: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:  # [num_seqs, vocab] in the model dtype
        """Loads the step into the static buffers and replays the smallest graph that holds it.

        ``previous_tokens``: (rows [k] int64, token ids [k] int64), both on the device: input ids that
        the previous step sampled and the host has not read yet (async scheduling), written over the
        stand-ins of those rows on the device.
        """
        n = len(scheduled)
        batch_size = next(s for s in self.batch_sizes if s >= n)
        bs = self.block_size
        num_blocks = np.fromiter((len(s.block_ids) for s in scheduled), dtype=np.int64, count=n)
        width = int(num_blocks.max())
        flat = np.fromiter(
            itertools.chain.from_iterable(s.block_ids for s in scheduled),
            dtype=np.int32,
            count=int(num_blocks.sum()),
        )
        tables_tensor = self._table_staging[self._num_runs % 2][: n * width].view(n, width)
        tables = tables_tensor.numpy()
        tables.fill(0)
        tables[np.arange(width)[None, :] < num_blocks[:, None]] = flat
        positions = np.fromiter((s.start_position for s in scheduled), dtype=np.int64, count=n)

        staging_tensor = self._staging[self._num_runs % 2]
        self._num_runs += 1
        staging = staging_tensor.numpy()
        ids, pos, slots, lens = (staging[i * batch_size : (i + 1) * batch_size] for i in range(4))
        ids[:n] = np.fromiter((s.token_ids[0] for s in scheduled), dtype=np.int64, count=n)
        ids[n:] = 0
        pos[:n] = positions
        pos[n:] = 0
        slots[:n] = tables[np.arange(n), positions // bs].astype(np.int64) * bs + positions % bs
        slots[n:] = -1
        lens[:n] = positions + 1
        lens[n:] = 1
        packed = staging_tensor[: 4 * batch_size].to(self.device, non_blocking=True)
        self.input_ids[:batch_size].copy_(packed[:batch_size])
        self.positions[:batch_size].copy_(packed[batch_size : 2 * batch_size])
        self.slot_mapping[:batch_size].copy_(packed[2 * batch_size : 3 * batch_size])
        self.seq_lens[:batch_size].copy_(packed[3 * batch_size :])
        self.block_tables[:n, :width].copy_(tables_tensor.to(self.device, non_blocking=True))
        if previous_tokens is not None:
            rows, token_ids = previous_tokens
            self.input_ids.index_copy_(0, rows, token_ids)
        self._graphs[batch_size].replay()
        return self._logits[batch_size][:n]
