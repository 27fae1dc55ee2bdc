"""The reference backend against the definition of causal attention, one query at a time in float64."""

from __future__ import annotations

import pytest
import torch

from pagedllm.attention import AttentionMetadata, ReferenceAttentionBackend


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """q: [query_len, H, D], the last query_len positions of a context; k, v: [ctx, H_kv, D]."""
    query_len, num_heads, head_dim = q.shape
    ctx, num_kv_heads, _ = k.shape
    group = num_heads // num_kv_heads
    out = torch.empty(query_len, num_heads, head_dim, dtype=torch.float64)
    for h in range(num_heads):
        for i in range(query_len):
            visible = ctx - query_len + i + 1
            scores = (k[:visible, h // group].double() @ q[i, h].double()) * scale
            out[i, h] = torch.softmax(scores, 0) @ v[:visible, h // group].double()
    return out


def make_batch(
    seqs: list[tuple[int, int]], block_size: int, num_kv_heads: int, num_heads: int, head_dim: int
):
    """seqs: (context length, new tokens). Blocks are scattered at random through the pool."""
    num_blocks = sum(-(-ctx // block_size) for ctx, _ in seqs) + 3
    cache = torch.randn(2, num_blocks, block_size, num_kv_heads, head_dim)
    free = torch.randperm(num_blocks).tolist()
    tables, slots, starts = [], [], [0]
    for ctx, query_len in seqs:
        table = [free.pop() for _ in range(-(-ctx // block_size))]
        tables.append(table)
        slots += [table[p // block_size] * block_size + p % block_size for p in range(ctx - query_len, ctx)]
        starts.append(starts[-1] + query_len)
    block_tables = torch.zeros(len(seqs), max(len(t) for t in tables), dtype=torch.int32)
    for i, table in enumerate(tables):
        block_tables[i, : len(table)] = torch.tensor(table)
    lens = [ctx for ctx, _ in seqs]
    metadata = AttentionMetadata(
        slot_mapping=torch.tensor(slots),
        block_tables=block_tables,
        query_start_loc=torch.tensor(starts, dtype=torch.int32),
        seq_lens=torch.tensor(lens, dtype=torch.int32),
        max_query_len=max(q for _, q in seqs),
        max_seq_len=max(lens),
        query_start_loc_host=starts,
        seq_lens_host=lens,
    )
    return cache, tables, metadata


@pytest.mark.parametrize(
    ("block_size", "num_heads", "num_kv_heads"), [(1, 4, 4), (4, 6, 2), (16, 8, 1), (8, 9, 3)]
)
def test_ragged_mixed_batch_matches_naive_attention(block_size, num_heads, num_kv_heads):
    head_dim, scale = 16, 0.25
    # Decodes, a whole prefill, a chunk continuing a prefill, a prefix-cache-style extension.
    seqs = [(5, 1), (9, 9), (37, 4), (3, 1), (20, 1), (1, 1), (33, 32)]
    cache, tables, metadata = make_batch(seqs, block_size, num_kv_heads, num_heads, head_dim)
    num_tokens = metadata.query_start_loc_host[-1]
    q = torch.randn(num_tokens, num_heads, head_dim)
    k = torch.randn(num_tokens, num_kv_heads, head_dim)
    v = torch.randn(num_tokens, num_kv_heads, head_dim)
    out = ReferenceAttentionBackend().forward(q, k, v, cache, metadata, scale)
    assert not out.isnan().any()
    starts = metadata.query_start_loc_host
    for i, (ctx, _) in enumerate(seqs):
        blocks = torch.tensor(tables[i])
        k_ctx = cache[0][blocks].flatten(0, 1)[:ctx]
        v_ctx = cache[1][blocks].flatten(0, 1)[:ctx]
        # The new tokens' K/V must have landed in their slots.
        assert torch.equal(k_ctx[ctx - (starts[i + 1] - starts[i]) :], k[starts[i] : starts[i + 1]])
        expected = naive_attention(q[starts[i] : starts[i + 1]], k_ctx, v_ctx, scale)
        got = out[starts[i] : starts[i + 1]].double()
        assert ((got - expected).norm() / expected.norm()).item() < 1e-5, f"sequence {i}"


def test_write_skips_padding_slots():
    cache = torch.full((2, 2, 4, 1, 2), float("nan"))
    backend = ReferenceAttentionBackend()
    key = torch.ones(3, 1, 2)
    backend.write_kv(key, key * 2, cache, torch.tensor([5, -1, 0]))
    assert torch.equal(cache[0, 1, 1], torch.ones(1, 2)) and torch.equal(cache[1, 0, 0], 2 * torch.ones(1, 2))
    assert cache.isnan().sum() == 2 * 8 * 2 - 2 * 2 * 2
