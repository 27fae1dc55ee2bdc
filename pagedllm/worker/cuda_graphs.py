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

import logging
import time

import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.core.scheduler_output import ScheduledRequest
from pagedllm.worker.decode_inputs import DecodeInputPacker
from pagedllm.worker.model_inputs import PreviousTokens, write_previous_tokens
from pagedllm.worker.sampler import greedy_argmax

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
        # Static inputs: every graph reads prefixes of these. Ids, positions and slots are the rows of
        # one buffer, which a step fills with one copy.
        self._vectors = torch.zeros(3, n, dtype=torch.int64, device=device)
        self.input_ids, self.positions, self.slot_mapping = self._vectors
        self.slot_mapping.fill_(-1)
        self.seq_lens = torch.ones(n, dtype=torch.int32, device=device)
        self.query_start_loc = torch.arange(n + 1, dtype=torch.int32, device=device)
        # NOTE: zeros, and only ever overwritten with real block ids: a padding row's stale table
        # row always names a block that exists.
        self.block_tables = torch.zeros(n, self.max_blocks_per_seq, dtype=torch.int32, device=device)
        self._packer = DecodeInputPacker(n, self.max_blocks_per_seq, block_size, pin_memory=True)
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._logits: dict[int, torch.Tensor] = {}
        # Per batch size, the greedy argmax of that graph's logits as a graph of its own: one launch on
        # the host where the Triton argmax is two (~0.1 ms of host time a step, issue 6), replayed only
        # for batches that take the plain argmax.
        self._argmax_graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._argmax: dict[int, torch.Tensor] = {}
        self._last_batch_size = 0
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
        for batch_size in reversed(self.batch_sizes):
            greedy_argmax(self._logits[batch_size])  # compiles outside the capture
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                self._argmax[batch_size] = greedy_argmax(self._logits[batch_size])
            self._argmax_graphs[batch_size] = graph
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
        previous_tokens: PreviousTokens | None = None,
    ) -> torch.Tensor:  # [num_seqs, vocab] in the model dtype
        """Loads the step into the static buffers and replays the smallest graph that holds it.

        ``previous_tokens``: input ids that the previous step sampled and the host has not read yet
        (async scheduling), written over the stand-ins of those rows on the device.
        """
        n = len(scheduled)
        batch_size = next(s for s in self.batch_sizes if s >= n)
        inputs = self._packer.pack(scheduled, batch_size)
        self._vectors.copy_(inputs.vectors, non_blocking=True)
        self.seq_lens.copy_(inputs.seq_lens, non_blocking=True)
        tables = inputs.block_tables
        self.block_tables[:n, : tables.shape[1]].copy_(tables, non_blocking=True)
        if previous_tokens is not None:
            write_previous_tokens(self.input_ids, previous_tokens)
        self._graphs[batch_size].replay()
        self._last_batch_size = batch_size
        return self._logits[batch_size][:n]

    def argmax_of_last_run(self, num_rows: int) -> torch.Tensor:  # [num_rows] int64
        """The argmax of the last ``run``'s logits, its first ``num_rows`` rows."""
        batch_size = self._last_batch_size
        self._argmax_graphs[batch_size].replay()
        # NOTE: a copy: the next step's replay overwrites the graph's output.
        return self._argmax[batch_size][:num_rows].clone()
