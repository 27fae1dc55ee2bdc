"""Compile, before serving, every attention-kernel variant that an eager step can pick.

Triton compiles a kernel once per combination of its compile-time constants. The decode kernel's follow
the step's split plan (one split or several, the merge fused or not, the padded split count, KV heads
per program), which follows the batch size and the longest context. A variant first met inside a
serving step compiles there, and every request waits: a 620 ms step in a saturated server run on an
H100 (session 5 step trace), when a mixed step's few decodes picked a plan the warm-up run had not.
Graph capture compiles the pure-decode plans of its ladder only, and the memory profile (skipped when
``kv_cache_memory_bytes`` is given) the plain prefill; this runs one small eager step per plan, as a
pure decode and as a mixed step (decodes beside a prefill: the decode kernel skips the prefill, the
prefill kernel the decodes). The prefill kernel has a faster variant for plain prefills (no cached
tokens; through TMA, at least a key tile of new tokens per sequence: ``paged_prefill_attention``): a
256-token plain prefill and a 2-token one over a cached token, alone and beside a decode, compile both.

NOTE: the steps read and write block 0 of the cache: nothing lives in it before the first request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable

import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.core.scheduler_output import ScheduledRequest
from pagedllm.worker.model_inputs import build_model_inputs

logger = logging.getLogger(__name__)


def context_lengths(max_model_len: int) -> list[int]:
    """1, 2, 4, ... and ``max_model_len``: the plans change with the longest context only at powers of
    two of the split length (256 tokens) and at the caps, which these reach."""
    lengths = {max_model_len}
    n = 1
    while n < max_model_len:
        lengths.add(n)
        n *= 2
    return sorted(lengths)


# (sequences, longest context, kind): kind "decode", "mixed" or "prefill", the last two optionally with
# "/long" (the prefill has LONG_PREFILL new tokens instead of 2) or "/cached" (and one cached token).
WarmUpStep = tuple[int, int, str]
# More new tokens than any prefill plan's key tile: a plain prefill's faster variant.
LONG_PREFILL = 256


def warm_up_steps(
    backend: AttentionBackend,
    num_kv_heads: int,
    head_dim: int,
    device: torch.device,
    max_num_seqs: int,
    max_model_len: int,
) -> list[WarmUpStep]:
    """One step per decode-kernel variant the backend can pick, pure-decode and mixed, then the prefill
    kernel's variants; empty when the backend compiles nothing per step."""
    steps: list[WarmUpStep] = []
    for kind in ("decode", "mixed"):
        mixed = kind == "mixed"
        seen: set[Hashable] = set()
        # NOTE: a mixed step holds at least one decode and the 2-token prefill.
        for num_seqs in range(2 if mixed else 1, max_num_seqs + 1):
            for max_seq_len in context_lengths(max_model_len):
                longest = max(max_seq_len, 2) if mixed else max_seq_len
                variant = backend.decode_kernel_variant(num_seqs, num_kv_heads, head_dim, longest, device)
                if variant is None:
                    return []
                if variant not in seen:
                    seen.add(variant)
                    steps.append((num_seqs, longest, kind))
    steps.append((1, 2, "prefill"))
    for num_seqs, context, kind in (
        (1, 3, "prefill/cached"),
        (2, 3, "mixed/cached"),
        (1, LONG_PREFILL, "prefill/long"),
        (2, LONG_PREFILL, "mixed/long"),
    ):
        if num_seqs <= max_num_seqs and context <= max_model_len:
            steps.append((num_seqs, context, kind))
    return steps


def _scheduled(step: WarmUpStep, block_size: int) -> list[ScheduledRequest]:
    """Decodes: one sequence of the longest context, the others of one token, every block table naming
    block 0; a mixed step's first sequence is a prefill instead (2 new tokens, or as its kind says), a
    prefill step's only one."""
    num_seqs, max_seq_len, kind = step
    base, *flags = kind.split("/")
    prefill_new = LONG_PREFILL if "long" in flags else 2
    prefill_len = prefill_new + ("cached" in flags)
    lens = [max_seq_len] + [1] * (num_seqs - 1)
    if base == "mixed":
        lens[0], lens[1] = prefill_len, max_seq_len
    elif base == "prefill":
        lens[0] = prefill_len
    scheduled = []
    for i, seq_len in enumerate(lens):
        num_new = prefill_new if base != "decode" and i == 0 else 1
        scheduled.append(
            ScheduledRequest(
                request_id=f"warm-up-{i}",
                token_ids=[0] * num_new,
                start_position=seq_len - num_new,
                block_ids=[0] * -(-seq_len // block_size),
                needs_sample=True,
                arrival_order=i,
            )
        )
    return scheduled


@torch.inference_mode()
def warm_up_attention_variants(
    model: nn.Module,
    kv_caches: list[torch.Tensor],
    backend: AttentionBackend,
    device: torch.device,
    block_size: int,
    max_num_seqs: int,
    max_model_len: int,
) -> int:
    """Run one eager step per variant (see the module's docstring); returns how many ran."""
    if max_num_seqs < 1 or max_model_len < 2 or not kv_caches:
        return 0
    start = time.perf_counter()
    num_kv_heads, head_dim = kv_caches[0].shape[3], kv_caches[0].shape[4]
    steps = warm_up_steps(backend, num_kv_heads, head_dim, device, max_num_seqs, max_model_len)
    for step in steps:
        inputs = build_model_inputs(_scheduled(step, block_size), block_size, device)
        with forward_context(inputs.attn_metadata, kv_caches, backend):
            model(inputs.input_ids, inputs.positions)
    if steps and device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    logger.info("attention kernel variants: %d warm-up steps in %.1f s", len(steps), seconds)
    return len(steps)
