"""Reference paged attention in plain torch: the oracle every fast backend is tested against.

Written to be obviously correct rather than fast: K/V are gathered block by block through the block
table into a contiguous tensor and attended with an explicit causal mask in float32. Decode-only
sequences (one new token each) are batched together; every other sequence is attended on its own.
"""

from __future__ import annotations

import torch

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.metadata import AttentionMetadata


class ReferenceAttentionBackend(AttentionBackend):
    name = "reference"

    def write_kv(
        self,
        key: torch.Tensor,
        value: torch.Tensor,
        kv_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
    ) -> None:
        _, num_blocks, block_size, num_kv_heads, head_dim = kv_cache.shape
        keep = slot_mapping >= 0
        slots = slot_mapping[keep]
        # Viewing [num_blocks, block_size] as one axis makes a slot a plain row index.
        flat_k = kv_cache[0].view(num_blocks * block_size, num_kv_heads, head_dim)
        flat_v = kv_cache[1].view(num_blocks * block_size, num_kv_heads, head_dim)
        flat_k[slots] = key[keep].to(kv_cache.dtype)
        flat_v[slots] = value[keep].to(kv_cache.dtype)

    def attend(
        self,
        query: torch.Tensor,
        kv_cache: torch.Tensor,
        metadata: AttentionMetadata,
        scale: float,
    ) -> torch.Tensor:
        out = torch.empty_like(query)
        starts = metadata.query_start_loc_host
        seq_lens = metadata.seq_lens_host
        decode_seqs = [i for i in range(metadata.num_seqs) if starts[i + 1] - starts[i] == 1]
        other_seqs = [i for i in range(metadata.num_seqs) if starts[i + 1] - starts[i] > 1]
        if decode_seqs:
            self._attend_decodes(query, kv_cache, metadata, scale, decode_seqs, out)
        for i in other_seqs:
            q = query[starts[i] : starts[i + 1]]
            k, v = _gather_context(kv_cache, metadata.block_tables[i], seq_lens[i])
            out[starts[i] : starts[i + 1]] = _attend_one(q, k, v, scale)
        return out

    def _attend_decodes(
        self,
        query: torch.Tensor,
        kv_cache: torch.Tensor,
        metadata: AttentionMetadata,
        scale: float,
        seq_ids: list[int],
        out: torch.Tensor,
    ) -> None:
        block_size = kv_cache.shape[2]
        seq_lens = [metadata.seq_lens_host[i] for i in seq_ids]
        max_len = max(seq_lens)
        max_blocks = -(-max_len // block_size)
        rows = torch.tensor([metadata.query_start_loc_host[i] for i in seq_ids], device=query.device)
        tables = metadata.block_tables[seq_ids, :max_blocks].long()  # [n, max_blocks]
        n = len(seq_ids)
        num_kv_heads, head_dim = kv_cache.shape[3:]
        # k, v: [n, num_kv_heads, ctx, head_dim] with ctx = max_blocks * block_size
        k = kv_cache[0][tables].reshape(n, -1, num_kv_heads, head_dim).transpose(1, 2).float()
        v = kv_cache[1][tables].reshape(n, -1, num_kv_heads, head_dim).transpose(1, 2).float()
        lens = torch.tensor(seq_lens, device=query.device)
        valid = torch.arange(k.shape[2], device=query.device)[None, :] < lens[:, None]  # [n, ctx]
        # Query heads of one KV head side by side: q [n, num_kv_heads, group, head_dim].
        q = query[rows].float().view(n, num_kv_heads, -1, head_dim)
        scores = (q @ k.transpose(2, 3)) * scale  # [n, num_kv_heads, group, ctx]
        scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out[rows] = (probs @ v).reshape(n, -1, head_dim).to(out.dtype)


def _gather_context(
    kv_cache: torch.Tensor, block_table: torch.Tensor, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``seq_len`` K and V rows of one sequence: [seq_len, num_kv_heads, head_dim] each."""
    block_size = kv_cache.shape[2]
    num_blocks = -(-seq_len // block_size)
    blocks = block_table[:num_blocks].long()
    k = kv_cache[0][blocks].flatten(0, 1)[:seq_len]
    v = kv_cache[1][blocks].flatten(0, 1)[:seq_len]
    return k, v


def _attend_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal attention of the last ``len(q)`` positions of a context over all of it."""
    query_len, num_heads, head_dim = q.shape
    seq_len, num_kv_heads, _ = k.shape
    # Query heads of one KV head side by side: qf [num_kv_heads, group * query_len, head_dim].
    qf = (
        q.float()
        .view(query_len, num_kv_heads, -1, head_dim)
        .permute(1, 2, 0, 3)
        .reshape(num_kv_heads, -1, head_dim)
    )
    kf = k.float().transpose(0, 1)  # [num_kv_heads, seq_len, head_dim]
    vf = v.float().transpose(0, 1)
    scores = (qf @ kf.transpose(1, 2)) * scale  # [num_kv_heads, group * query_len, seq_len]
    q_pos = torch.arange(seq_len - query_len, seq_len, device=q.device).repeat(num_heads // num_kv_heads)
    k_pos = torch.arange(seq_len, device=q.device)
    scores = scores.masked_fill(k_pos[None, None, :] > q_pos[None, :, None], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ vf).view(num_kv_heads, -1, query_len, head_dim)  # [num_kv_heads, group, query_len, d]
    return out.permute(2, 0, 1, 3).reshape(query_len, num_heads, head_dim).to(q.dtype)
