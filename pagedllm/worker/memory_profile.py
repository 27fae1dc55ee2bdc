"""Sizing the KV cache on a GPU: a profiling forward pass at the largest step measures peak activations.

    kv_cache_bytes = gpu_memory_utilization * total - weights - peak activations - memory outside torch

The profiling step is the largest the scheduler can form: ``max_num_batched_tokens`` new tokens spread
over ``max_num_seqs`` sequences (prefill attention over all of them), logits for every sequence, and a
top-p-like sort of those logits (the sampler's largest intermediate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.model.config import ModelArchConfig
from pagedllm.worker.kv_cache import allocate_kv_caches

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemoryProfile:
    total_bytes: int  # the card
    weights_bytes: int  # what torch held before the profiling step (the model)
    peak_activation_bytes: int  # the profiling step's peak over that, its scratch KV cache excluded
    non_torch_bytes: int  # CUDA context, other processes: used on the card but not by torch's allocator
    kv_cache_bytes: int  # what is left for the cache (may be <= 0)


def _profile_inputs(
    num_tokens: int, num_seqs: int, block_size: int, vocab_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata, torch.Tensor, int]:
    """Sequences of (nearly) equal length, all prefilling from scratch, laid out in consecutive blocks."""
    num_seqs = max(1, min(num_seqs, num_tokens))
    lens = np.full(num_seqs, num_tokens // num_seqs, dtype=np.int64)
    lens[: num_tokens % num_seqs] += 1
    blocks_per_seq = -(-lens // block_size)
    first_block = np.zeros(num_seqs, dtype=np.int64)
    np.cumsum(blocks_per_seq[:-1], out=first_block[1:])
    num_blocks = int(blocks_per_seq.sum())
    max_blocks = int(blocks_per_seq.max())
    block_tables = first_block[:, None] + np.arange(max_blocks)[None, :]
    query_start_loc = np.zeros(num_seqs + 1, dtype=np.int64)
    np.cumsum(lens, out=query_start_loc[1:])
    positions = np.concatenate([np.arange(n) for n in lens])
    seq_ids = np.repeat(np.arange(num_seqs), lens)
    slots = (first_block[seq_ids] + positions // block_size) * block_size + positions % block_size
    metadata = AttentionMetadata(
        slot_mapping=torch.from_numpy(slots).to(device),
        block_tables=torch.from_numpy(block_tables.astype(np.int32)).to(device),
        query_start_loc=torch.from_numpy(query_start_loc.astype(np.int32)).to(device),
        seq_lens=torch.from_numpy(lens.astype(np.int32)).to(device),
        max_query_len=int(lens.max()),
        max_seq_len=int(lens.max()),
        query_start_loc_host=query_start_loc.tolist(),
        seq_lens_host=lens.tolist(),
    )
    # Any ids the model has: an id past a (tiny) vocabulary trips the embedding's device-side assert.
    input_ids = torch.randint(0, min(100, vocab_size), (num_tokens,), device=device)
    logits_indices = torch.from_numpy(query_start_loc[1:] - 1).to(device)
    return input_ids, torch.from_numpy(positions).to(device), metadata, logits_indices, num_blocks


@torch.inference_mode()
def profile_memory(
    model: nn.Module,
    arch: ModelArchConfig,
    backend: AttentionBackend,
    device: torch.device,
    dtype: torch.dtype,
    block_size: int,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    gpu_memory_utilization: float,
) -> MemoryProfile:
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    weights = torch.cuda.memory_allocated(device)
    input_ids, positions, metadata, logits_indices, num_blocks = _profile_inputs(
        max_num_batched_tokens, max_num_seqs, block_size, arch.vocab_size, device
    )
    scratch = allocate_kv_caches(arch, num_blocks, block_size, dtype, device)
    scratch_bytes = sum(t.numel() * t.element_size() for t in scratch)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    with forward_context(metadata, scratch, backend):
        hidden = model(input_ids, positions)  # [num_tokens, hidden]
    logits = model.compute_logits(hidden[logits_indices])  # type: ignore[operator]
    del hidden
    # The sampler's widest path: the float32 logits, their softmax, a sort with its indices, a filter mask.
    probs = logits.float().softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    del logits, probs, sorted_probs, order
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - baseline
    del scratch, metadata, input_ids, positions, logits_indices
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info(device)
    non_torch = max(0, (total - free) - torch.cuda.memory_reserved(device))
    kv_bytes = int(gpu_memory_utilization * total) - weights - peak - non_torch
    logger.info(
        "memory profile: %.2f GiB card, %.2f GiB weights, %.2f GiB peak activations (%d tokens, %d seqs; "
        "scratch KV %.2f GiB excluded), %.2f GiB outside torch -> %.2f GiB for the KV cache",
        total / 2**30,
        weights / 2**30,
        peak / 2**30,
        max_num_batched_tokens,
        max_num_seqs,
        scratch_bytes / 2**30,
        non_torch / 2**30,
        kv_bytes / 2**30,
    )
    return MemoryProfile(total, weights, peak, non_torch, kv_bytes)
