"""What one step's attention needs to know about the batch: where new K/V go, where old K/V live."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(slots=True)
class AttentionMetadata:
    """Flat (unpadded) batch of new tokens for one model step.

    The batch concatenates every scheduled sequence's new tokens: a decode contributes one token, a
    prefill (or a chunk of one) several. Sequence ``i`` owns query rows
    ``query_start_loc[i]:query_start_loc[i + 1]``; those tokens are the *last* ``query_len`` tokens of
    its ``seq_len`` tokens of context, so a new token at query row ``j`` sits at position
    ``seq_len - query_len + j`` and attends causally to keys ``0 .. seq_len - query_len + j``.
    """

    slot_mapping: torch.Tensor  # [num_tokens] int64: block_id * block_size + offset; -1 = do not store
    block_tables: torch.Tensor  # [num_seqs, max_blocks_per_seq] int32; entries past a seq's blocks unused
    query_start_loc: torch.Tensor  # [num_seqs + 1] int32, cu_seqlens of the new tokens
    seq_lens: torch.Tensor  # [num_seqs] int32, context length after this step (cached + new)
    max_query_len: int
    max_seq_len: int
    # Host copies of the two length vectors, so backends that loop on the host never sync the device.
    query_start_loc_host: list[int]
    seq_lens_host: list[int]

    @property
    def num_seqs(self) -> int:
        return len(self.seq_lens_host)

    @property
    def is_pure_decode(self) -> bool:
        return self.max_query_len == 1
