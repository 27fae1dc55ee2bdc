"""CUDA graphs for steps that are not pure decodes: the forward pass captured in pieces cut at attention.

An eager step launches every layer's kernels from Python, one call each: ~8 ms of host time for a 1B
model's 16 layers, ~16 ms inside a busy server (session 7's step trace of a served 1B at 64 requests/s:
177 of 1,257 steps admitted a prompt, and each of those mixed steps took ~17 ms, 15.8 of them launching,
for a few ms of GPU work). Only attention depends on the batch's shape (its sequences, their lengths,
the decode kernel's split plan); everything else is token-wise and depends on the number of tokens alone.
So, as vLLM's piecewise graphs do, the forward pass is captured per padded token count as
``num_layers + 1`` graphs cut at every attention. A piece ends by storing its layer's K/V in the cache
(through the static slot mapping) and copying q/k/v into static buffers; the next piece starts from the
attention's static output. A step copies its inputs into the static buffers, replays the pieces in order
and runs each attention eagerly between two replays, on the step's own metadata: two or three launches
a layer instead of a dozen.

A step of ``n`` tokens replays the smallest captured size ``T >= n``. The padding rows store nothing
(slot -1); their attention output is whatever an earlier step left in the static buffer (zeros at
first), and rows meet only inside attention, so they never touch a real row.

NOTE: q/k/v and the final hidden states are copied into buffers allocated outside the graphs instead of
being read where the pieces computed them: those tensors live in the memory pool that every size shares,
and keeping them alive for every size would hold all sizes' activations at once. The copies cost the GPU
a few microseconds a layer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.attention.layer import Attention
from pagedllm.attention.metadata import AttentionMetadata

logger = logging.getLogger(__name__)

# Mixed steps above this many tokens stay eager: from about here the GPU's work outlasts the host's
# launches (a 1B model's 2,048-token step is ~7 ms on an H100), and every captured size holds graphs.
DEFAULT_MAX_TOKENS = 2048


def token_count_ladder(max_tokens: int) -> list[int]:
    """Multiples of 16 up to 256, then steps of an eighth of the power of two below (a step is padded
    by less than 1/8 of its tokens), and ``max_tokens`` itself."""
    sizes = {max_tokens}
    n = 16
    while n < max_tokens:
        sizes.add(n)
        n += max(16, (1 << (n.bit_length() - 1)) // 8)
    return sorted(sizes)


@dataclass(slots=True)
class _Pieces:
    """One captured size: ``num_layers + 1`` graphs, and after each graph but the last the (layer index,
    softmax scale) of the attention that runs eagerly there."""

    graphs: list[torch.cuda.CUDAGraph] = field(default_factory=list)
    attentions: list[tuple[int, float]] = field(default_factory=list)


class _Capture:
    """The attention cut while one size is captured (``AttentionCut``): ends the current piece at every
    attention layer and begins the next."""

    def __init__(self, owner: PiecewiseGraphs, num_tokens: int, pool: Any, stream: torch.cuda.Stream) -> None:
        self.owner = owner
        self.num_tokens = num_tokens
        self.pool = pool
        self.stream = stream  # captures begin and end on it (the caller makes it current)
        self.pieces = _Pieces()
        self._graph: torch.cuda.CUDAGraph | None = None

    def begin(self) -> None:
        self._graph = torch.cuda.CUDAGraph()
        self._graph.capture_begin(pool=self.pool)

    def end(self) -> None:
        assert self._graph is not None, "end() without begin()"
        self._graph.capture_end()
        self.pieces.graphs.append(self._graph)
        self._graph = None

    def abandon(self) -> None:
        """End a capture that failed midway: a stream left capturing fails every later CUDA call."""
        if self._graph is not None:
            # NOTE: on the capturing stream (an exception has left its context); an invalidated capture
            # reports its error here, and the stream stops capturing all the same.
            with torch.cuda.stream(self.stream), contextlib.suppress(RuntimeError):
                self._graph.capture_end()
            self._graph = None

    def __call__(
        self,
        layer_idx: int,
        scale: float,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        kv_stored: bool,
    ) -> torch.Tensor:
        owner, n = self.owner, self.num_tokens
        if not kv_stored:
            owner.backend.write_kv(key, value, owner.kv_caches[layer_idx], owner.slot_mapping[:n])
        owner.query[:n].copy_(query)
        owner.key[:n].copy_(key)
        owner.value[:n].copy_(value)
        self.end()
        self.pieces.attentions.append((layer_idx, scale))
        self.begin()
        return owner.attn_out[:n]


class PiecewiseGraphs:
    """Captured forward passes (logits excluded) for every token count of the ladder, sharing one pool."""

    def __init__(
        self,
        model: nn.Module,
        kv_caches: list[torch.Tensor],
        backend: AttentionBackend,
        device: torch.device,
        block_size: int,
        hidden_size: int,
        max_tokens: int,
    ) -> None:
        self.model = model
        self.kv_caches = kv_caches
        self.backend = backend
        self.device = device
        self.block_size = block_size
        if backend.name != "triton":
            # NOTE: a graph must not sync the host: the reference backend's K/V write counts its slots.
            raise ValueError(f"piecewise graphs need the Triton attention backend, not {backend.name!r}")
        self.sizes = token_count_ladder(max_tokens)
        self.max_tokens = self.sizes[-1]
        layers = [m for m in model.modules() if isinstance(m, Attention)]
        shapes = {(m.num_heads, m.num_kv_heads, m.head_dim) for m in layers}
        if len(shapes) != 1:
            raise ValueError(f"piecewise graphs need one attention shape in all layers, got {sorted(shapes)}")
        num_heads, num_kv_heads, head_dim = shapes.pop()
        dtype = kv_caches[0].dtype
        n = self.max_tokens
        # Static inputs and the tensors that cross a cut; every size uses their first rows.
        self.input_ids = torch.zeros(n, dtype=torch.int64, device=device)
        self.positions = torch.zeros(n, dtype=torch.int64, device=device)
        self.slot_mapping = torch.full((n,), -1, dtype=torch.int64, device=device)
        self.query = torch.zeros(n, num_heads, head_dim, dtype=dtype, device=device)
        self.key = torch.zeros(n, num_kv_heads, head_dim, dtype=dtype, device=device)
        self.value = torch.zeros(n, num_kv_heads, head_dim, dtype=dtype, device=device)
        self.attn_out = torch.zeros(n, num_heads, head_dim, dtype=dtype, device=device)
        self.hidden = torch.zeros(n, hidden_size, dtype=dtype, device=device)
        self._pieces: dict[int, _Pieces] = {}
        self.num_runs = 0  # steps run through the graphs
        self.pool_bytes = 0  # what capturing reserved on the device (the graphs' memory pool)

    def _prefill_metadata(self, num_tokens: int) -> AttentionMetadata:
        """One sequence prefilling ``num_tokens`` tokens from scratch, storing nothing: the eager warm-up
        step of a size, and the metadata its capture runs under (read inside a piece: its slot mapping,
        the static buffer, by kernels that store the step's K/V themselves)."""
        num_blocks = -(-num_tokens // self.block_size)
        return AttentionMetadata(
            slot_mapping=self.slot_mapping[:num_tokens],
            block_tables=torch.zeros(1, num_blocks, dtype=torch.int32, device=self.device),
            query_start_loc=torch.tensor([0, num_tokens], dtype=torch.int32, device=self.device),
            seq_lens=torch.tensor([num_tokens], dtype=torch.int32, device=self.device),
            max_query_len=num_tokens,
            max_seq_len=num_tokens,
            query_start_loc_host=[0, num_tokens],
            seq_lens_host=[num_tokens],
        )

    @torch.inference_mode()
    def capture(self) -> None:
        start = time.perf_counter()
        # Each size eagerly first: compiles its kernels and settles cuBLAS, outside any capture.
        for num_tokens in reversed(self.sizes):
            with forward_context(self._prefill_metadata(num_tokens), self.kv_caches, self.backend):
                self.model(self.input_ids[:num_tokens], self.positions[:num_tokens])
        torch.cuda.synchronize(self.device)
        reserved_before = torch.cuda.memory_reserved(self.device)
        pool = torch.cuda.graph_pool_handle()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        for num_tokens in reversed(self.sizes):  # largest first: the pool is sized once
            capture = _Capture(self, num_tokens, pool, stream)
            metadata = self._prefill_metadata(num_tokens)
            try:
                with (
                    torch.cuda.stream(stream),
                    forward_context(metadata, self.kv_caches, self.backend, capture),
                ):
                    capture.begin()
                    hidden = self.model(self.input_ids[:num_tokens], self.positions[:num_tokens])
                    self.hidden[:num_tokens].copy_(hidden)
                    capture.end()
            except Exception as e:
                capture.abandon()
                self._pieces.clear()
                raise RuntimeError(
                    f"capturing the piecewise graphs of {num_tokens}-token steps failed ({e}); "
                    "piecewise_graph_max_tokens=0 runs those steps eagerly"
                ) from e
            self._pieces[num_tokens] = capture.pieces
        torch.cuda.current_stream(self.device).wait_stream(stream)
        torch.cuda.synchronize(self.device)
        self.pool_bytes = torch.cuda.memory_reserved(self.device) - reserved_before
        logger.info(
            "captured piecewise graphs: %d token counts up to %d, %d graphs each, pool %.0f MiB, in %.1f s",
            len(self.sizes),
            self.max_tokens,
            len(self._pieces[self.max_tokens].graphs),
            self.pool_bytes / 2**20,
            time.perf_counter() - start,
        )

    def can_run(self, num_tokens: int) -> bool:
        return num_tokens <= self.max_tokens

    def run(
        self, input_ids: torch.Tensor, positions: torch.Tensor, metadata: AttentionMetadata
    ) -> torch.Tensor:
        """The step's hidden states [num_tokens, hidden_size] (a view of a static buffer, valid until
        the next run): its inputs copied in, the pieces of the smallest size that holds it replayed, and
        its attentions run eagerly between them."""
        n = input_ids.shape[0]
        size = next(s for s in self.sizes if s >= n)
        self.input_ids[:n].copy_(input_ids)
        self.positions[:n].copy_(positions)
        self.slot_mapping[:n].copy_(metadata.slot_mapping)
        self.slot_mapping[n:size].fill_(-1)
        pieces = self._pieces[size]
        query, key, value, out = self.query[:n], self.key[:n], self.value[:n], self.attn_out[:n]
        for graph, (layer_idx, scale) in zip(pieces.graphs, pieces.attentions, strict=False):
            graph.replay()
            self.backend.attend_after_write(
                query, key, value, self.kv_caches[layer_idx], metadata, scale, out=out
            )
        pieces.graphs[-1].replay()
        self.num_runs += 1
        return self.hidden[:n]
