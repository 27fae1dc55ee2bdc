"""Flat batch inputs for one step, built on the host with numpy and moved to the device at once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.core.scheduler_output import ScheduledRequest


@dataclass(slots=True)
class ModelInputs:
    input_ids: torch.Tensor  # [num_tokens] int64
    positions: torch.Tensor  # [num_tokens] int64
    attn_metadata: AttentionMetadata
    # Rows of the hidden states whose logits are needed: the last token of each sampled sequence.
    logits_indices: torch.Tensor  # [num_sampled] int64


# Async scheduling: a step's input tokens that the step before samples, on the device: (their indices
# in the step's flat tokens [k] int64, or None for 0..k-1; token ids [k] int64).
PreviousTokens = tuple[torch.Tensor | None, torch.Tensor]


def write_previous_tokens(input_ids: torch.Tensor, previous_tokens: PreviousTokens) -> None:
    """Write the tokens the step before samples over their stand-ins in ``input_ids``."""
    indices, token_ids = previous_tokens
    if indices is None:
        input_ids[: token_ids.shape[0]].copy_(token_ids)
    else:
        input_ids.index_copy_(0, indices, token_ids)


def build_model_inputs(
    scheduled: list[ScheduledRequest], block_size: int, device: torch.device
) -> ModelInputs:
    num_seqs = len(scheduled)
    query_lens = np.fromiter((s.num_tokens for s in scheduled), dtype=np.int64, count=num_seqs)
    starts = np.fromiter((s.start_position for s in scheduled), dtype=np.int64, count=num_seqs)
    query_start_loc = np.zeros(num_seqs + 1, dtype=np.int64)
    np.cumsum(query_lens, out=query_start_loc[1:])
    seq_lens = starts + query_lens
    num_tokens = int(query_start_loc[-1])

    # Vectorized over the whole batch: per-sequence numpy calls cost more than the arithmetic at
    # hundreds of decodes per step.
    input_ids = np.fromiter(
        itertools.chain.from_iterable(s.token_ids for s in scheduled), dtype=np.int64, count=num_tokens
    )
    token_rows = np.repeat(np.arange(num_seqs), query_lens)  # sequence of each token
    positions = np.arange(num_tokens, dtype=np.int64) + np.repeat(starts - query_start_loc[:-1], query_lens)

    table_lens = np.fromiter((len(s.block_ids) for s in scheduled), dtype=np.int64, count=num_seqs)
    max_blocks = int(table_lens.max())
    block_tables = np.zeros((num_seqs, max_blocks), dtype=np.int32)
    table_starts = np.zeros(num_seqs, dtype=np.int64)
    np.cumsum(table_lens[:-1], out=table_starts[1:])
    num_entries = int(table_lens.sum())
    entries = np.fromiter(
        itertools.chain.from_iterable(s.block_ids for s in scheduled), dtype=np.int32, count=num_entries
    )
    entry_rows = np.repeat(np.arange(num_seqs), table_lens)
    entry_cols = np.arange(num_entries) - np.repeat(table_starts, table_lens)
    block_tables[entry_rows, entry_cols] = entries
    block_of_token = block_tables[token_rows, positions // block_size].astype(np.int64)
    slot_mapping = block_of_token * block_size + positions % block_size

    sampled_rows = [i for i, s in enumerate(scheduled) if s.needs_sample]
    logits_indices = query_start_loc[1:][sampled_rows] - 1

    def to_device(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device, non_blocking=True)

    metadata = AttentionMetadata(
        slot_mapping=to_device(slot_mapping),
        block_tables=to_device(block_tables),
        query_start_loc=to_device(query_start_loc.astype(np.int32)),
        seq_lens=to_device(seq_lens.astype(np.int32)),
        max_query_len=int(query_lens.max()),
        max_seq_len=int(seq_lens.max()),
        query_start_loc_host=query_start_loc.tolist(),
        seq_lens_host=seq_lens.tolist(),
    )
    return ModelInputs(
        input_ids=to_device(input_ids),
        positions=to_device(positions),
        attn_metadata=metadata,
        logits_indices=to_device(logits_indices.astype(np.int64)),
    )
