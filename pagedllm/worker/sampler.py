"""Turns one step's logits into one token per request, plus the log-probabilities users asked for."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pagedllm.worker.sampling_batch import PenaltyInputs, SamplingBatch


def greedy_argmax(logits: torch.Tensor) -> torch.Tensor:  # [num_reqs, vocab_size] -> [num_reqs] int64
    """``logits.argmax(dim=-1)``; on CUDA two Triton launches, 1.4-2.7x faster than torch's at decode
    batch sizes."""
    if logits.is_cuda and logits.stride(-1) == 1:
        argmax_rows = _triton_argmax_rows()
        if argmax_rows is not None:
            return argmax_rows(logits)
    return logits.argmax(dim=-1)


@functools.cache
def _triton_argmax_rows() -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The Triton argmax, imported on first use (see its module's docstring), or None without triton."""
    if importlib.util.find_spec("triton") is None:
        return None
    from pagedllm.worker.triton_argmax import argmax_rows

    return argmax_rows


@dataclass(slots=True)
class SamplerOutput:
    sampled_token_ids: list[int]  # one per request
    # Per request: None, or (token_id, logprob, rank) of the sampled token, then of the top-k tokens
    # (rank 1..k). Log-probabilities are of the raw model distribution, before any processing.
    logprobs: list[list[tuple[int, float, int]] | None]


class Sampler:
    """Blocked tokens -> penalties -> greedy argmax | temperature -> min_p -> top_k -> top_p -> draw.

    Randomness is an exponential race: with ``q ~ Exp(1)`` per token, ``argmax(probs / q)`` is a draw from
    ``probs``. A seeded request draws its ``q`` row from its own generator only, so its tokens do not
    depend on the rest of the batch or on its row; every other row draws from ``default_generator``.
    """

    def __call__(
        self,
        logits: torch.Tensor,  # [num_reqs, vocab_size] model dtype or float32
        batch: SamplingBatch,
        default_generator: torch.Generator | None,
    ) -> SamplerOutput:
        if batch.num_reqs == 0:
            return SamplerOutput(sampled_token_ids=[], logprobs=[])
        sampled, raw_logprobs = self.sample(logits, batch, default_generator)
        return self.to_host(sampled, raw_logprobs, batch)

    def to_host(
        self,
        sampled: torch.Tensor,  # [num_reqs] int64
        raw_logprobs: torch.Tensor | None,  # [num_reqs, vocab_size] float32
        batch: SamplingBatch,
        host_ids: torch.Tensor | None = None,  # [num_reqs] int64: ``sampled`` already read back
    ) -> SamplerOutput:
        """The sampled ids (one read-back for the whole batch) and the logprobs asked for."""
        sampled_token_ids: list[int] = (sampled if host_ids is None else host_ids).tolist()
        if raw_logprobs is None:
            return SamplerOutput(sampled_token_ids=sampled_token_ids, logprobs=[None] * batch.num_reqs)
        return SamplerOutput(
            sampled_token_ids=sampled_token_ids,
            logprobs=gather_logprobs(raw_logprobs, sampled, sampled_token_ids, batch.num_logprobs),
        )

    def sample(
        self,
        logits: torch.Tensor,  # [num_reqs, vocab_size] model dtype or float32
        batch: SamplingBatch,
        default_generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:  # [num_reqs] int64, [num_reqs, vocab_size] | None
        """The sampled ids and raw logprobs, left on the device: nothing here waits for the GPU.

        ``logits`` may be in the model's dtype: a greedy batch with nothing to block or penalize takes
        its argmax as it is (a bf16 batch of 256 x 128k logits costs 0.1 ms to upcast on an H100,
        ~3% of a Llama-3.2-1B decode step); everything else computes in float32.
        """
        if not (batch.all_greedy and batch.blocked_index is None and batch.penalties is None):
            logits = logits.float()
        # vLLM's default ("raw_logprobs"): what the model said, not what the sampler drew from.
        raw_logprobs = logits.float().log_softmax(dim=-1) if batch.max_num_logprobs is not None else None

        if batch.blocked_index is not None:
            rows, tokens = batch.blocked_index
            logits = logits.clone()  # the caller's logits stay untouched
            logits[rows, tokens] = float("-inf")
        if batch.penalties is not None:
            logits = apply_penalties(logits, batch.penalties)

        if batch.all_greedy:
            sampled = greedy_argmax(logits)  # [num_reqs]
        else:
            sampled = self._sample(logits, batch, default_generator)
            if not batch.all_random:
                sampled = torch.where(batch.is_greedy, greedy_argmax(logits), sampled)
        return sampled, raw_logprobs

    def _sample(
        self,
        logits: torch.Tensor,  # [num_reqs, vocab_size] float32
        batch: SamplingBatch,
        default_generator: torch.Generator | None,
    ) -> torch.Tensor:  # [num_reqs] int64
        # NOTE: subtracting the row max before dividing keeps tiny temperatures from overflowing to inf
        # (and inf - inf to nan in the softmax); greedy rows divide by 1 and are replaced afterwards.
        temperature = batch.temperature.masked_fill(batch.is_greedy, 1.0)
        logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature[:, None]
        probs = logits.softmax(dim=-1)  # [num_reqs, vocab_size]
        if batch.needs_min_p:
            threshold = batch.min_p[:, None] * probs.amax(dim=-1, keepdim=True)
            probs = probs.masked_fill(probs < threshold, 0.0)
        if batch.needs_top_k or batch.needs_top_p:
            probs = apply_top_k_top_p(probs, batch.top_k, batch.top_p, batch.needs_top_p)
        return exponential_race(probs, batch.generators, default_generator)


def apply_penalties(
    logits: torch.Tensor,  # [num_reqs, vocab_size] float32
    penalties: PenaltyInputs,
) -> torch.Tensor:  # [num_reqs, vocab_size] float32
    """Repetition (prompt and output tokens, HF style), then frequency and presence (output tokens)."""
    num_reqs, vocab_size = logits.shape
    # The extra column absorbs the vocab_size padding and is dropped.
    output_counts = torch.zeros(num_reqs, vocab_size + 1, dtype=torch.float32, device=logits.device)
    ones = torch.ones(penalties.output_token_ids.shape, dtype=torch.float32, device=logits.device)
    output_counts.scatter_add_(1, penalties.output_token_ids, ones)
    output_counts = output_counts[:, :vocab_size]
    prompt_seen = torch.zeros(num_reqs, vocab_size + 1, dtype=torch.bool, device=logits.device)
    prompt_seen.scatter_(1, penalties.prompt_token_ids, True)
    seen = prompt_seen[:, :vocab_size] | (output_counts > 0)

    repetition = torch.where(seen, penalties.repetition_penalty[:, None], 1.0)  # [num_reqs, vocab_size]
    logits = torch.where(logits > 0, logits / repetition, logits * repetition)
    logits = logits - penalties.frequency_penalty[:, None] * output_counts
    logits = logits - penalties.presence_penalty[:, None] * (output_counts > 0).float()
    # A tiny repetition penalty overflows a logit to inf, and inf - inf in the softmax is nan: the
    # largest finite value keeps the order the penalty meant (blocked tokens stay at -inf).
    return logits.clamp(max=torch.finfo(logits.dtype).max)


def apply_top_k_top_p(
    probs: torch.Tensor,  # [num_reqs, vocab_size] float32
    top_k: torch.Tensor,  # [num_reqs] int64, vocab_size = off
    top_p: torch.Tensor,  # [num_reqs] float32, 1.0 = off
    needs_top_p: bool,
) -> torch.Tensor:  # [num_reqs, vocab_size] float32, filtered tokens at 0, not renormalized
    """Keeps each row's ``top_k`` most likely tokens, then the fewest of those reaching ``top_p``."""
    # NOTE: a stable sort breaks ties by token id, so which of several equal tokens survive a cut is
    # a property of the row alone, never of the batch.
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)  # [num_reqs, vocab_size]
    positions = torch.arange(probs.shape[-1], device=probs.device)
    drop = positions[None, :] >= top_k[:, None]  # [num_reqs, vocab_size], in sorted order
    if needs_top_p:
        kept = sorted_probs.masked_fill(drop, 0.0)
        # Mass strictly before each token, over the top-k survivors: the token is needed while it is
        # below top_p. The top token (0 before it) is always kept. top_p == 1 keeps everything, so the
        # rounding of a long cumsum cannot drop the tail.
        mass_before = (kept.cumsum(dim=-1) - kept) / kept.sum(dim=-1, keepdim=True)
        drop |= (mass_before >= top_p[:, None]) & (top_p[:, None] < 1.0) & (positions[None, :] > 0)
    drop_by_token = torch.empty_like(drop).scatter_(1, order, drop)
    return probs.masked_fill(drop_by_token, 0.0)


def exponential_race(
    probs: torch.Tensor,  # [num_reqs, vocab_size] float32, need not sum to 1
    generators: list[torch.Generator | None],
    default_generator: torch.Generator | None,
) -> torch.Tensor:  # [num_reqs] int64
    q = torch.empty_like(probs).exponential_(generator=default_generator)
    for row, generator in enumerate(generators):
        if generator is not None:
            q[row].exponential_(generator=generator)
    # NOTE: an Exp(1) draw of exactly 0 would make 0 / 0 = nan for a filtered token, and argmax
    # prefers nan; flooring q keeps filtered tokens at 0.
    q.clamp_min_(torch.finfo(q.dtype).tiny)
    return (probs / q).argmax(dim=-1)


def gather_logprobs(
    raw_logprobs: torch.Tensor,  # [num_reqs, vocab_size] float32
    sampled: torch.Tensor,  # [num_reqs] int64
    sampled_token_ids: list[int],
    num_logprobs: list[int | None],
) -> list[list[tuple[int, float, int]] | None]:
    max_k = max(k for k in num_logprobs if k is not None)
    sampled_logprobs = raw_logprobs.gather(1, sampled[:, None])  # [num_reqs, 1]
    # Rank 1 is the most likely token; ties share the better rank.
    sampled_ranks = (raw_logprobs > sampled_logprobs).sum(dim=-1) + 1  # [num_reqs]
    top_values, top_ids = raw_logprobs.topk(max_k, dim=-1)  # [num_reqs, max_k]
    sampled_lp: list[float] = sampled_logprobs.squeeze(1).tolist()
    ranks: list[int] = sampled_ranks.tolist()
    values: list[list[float]] = top_values.tolist()
    ids: list[list[int]] = top_ids.tolist()

    result: list[list[tuple[int, float, int]] | None] = []
    for row, k in enumerate(num_logprobs):
        if k is None:
            result.append(None)
            continue
        entry = [(sampled_token_ids[row], sampled_lp[row], ranks[row])]
        entry.extend((ids[row][j], values[row][j], j + 1) for j in range(k))
        result.append(entry)
    return result
