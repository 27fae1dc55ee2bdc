"""Device tensors the sampler needs for one step, built from the requests sampled in that step."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from pagedllm.sampling_params import SamplingParams

FLOAT32_TINY = torch.finfo(torch.float32).tiny  # the smallest positive normal float32


@dataclass(slots=True)
class PenaltyInputs:
    """Present only when some request in the batch uses a repetition, presence or frequency penalty."""

    repetition_penalty: torch.Tensor  # [num_reqs] float32, 1.0 = off
    presence_penalty: torch.Tensor  # [num_reqs] float32, 0.0 = off
    frequency_penalty: torch.Tensor  # [num_reqs] float32, 0.0 = off
    # Padded with vocab_size (an id past the vocabulary) so one scatter counts every row at once.
    # NOTE: rows without penalties carry no history (all padding): their penalties are no-ops anyway.
    prompt_token_ids: torch.Tensor  # [num_reqs, max_prompt_len] int64
    output_token_ids: torch.Tensor  # [num_reqs, max_output_len] int64


@dataclass(slots=True)
class SamplingBatch:
    """Row ``i`` of every tensor belongs to the ``i``-th request sampled this step."""

    temperature: torch.Tensor  # [num_reqs] float32, 0.0 = greedy
    top_p: torch.Tensor  # [num_reqs] float32, 1.0 = off
    top_k: torch.Tensor  # [num_reqs] int64, vocab_size = off
    min_p: torch.Tensor  # [num_reqs] float32, 0.0 = off
    is_greedy: torch.Tensor  # [num_reqs] bool
    penalties: PenaltyInputs | None
    # A request's own generator when it has a seed, else None (it draws from the engine-wide one).
    # NOTE: greedy rows get None: they never draw, so a seed on a greedy request consumes nothing.
    generators: list[torch.Generator | None]
    # Tokens that must not be sampled this step: EOS (unless ignore_eos) and stop_token_ids while the
    # request has fewer than min_tokens outputs.
    blocked_token_ids: list[list[int]]
    blocked_index: torch.Tensor | None  # [2, num_blocked] int64: (row, token id) pairs; None if none
    num_logprobs: list[int | None]
    vocab_size: int
    # Host-side summaries, so the sampler picks its fast paths without reading the device.
    all_greedy: bool
    all_random: bool
    needs_min_p: bool
    needs_top_k: bool
    needs_top_p: bool
    max_num_logprobs: int | None  # None when no request wants logprobs

    @property
    def num_reqs(self) -> int:
        return len(self.generators)

    @property
    def is_plain_greedy(self) -> bool:
        """Every row takes the argmax of its logits as they are: no blocked tokens, no penalties, no
        logprobs to report."""
        return (
            self.all_greedy
            and self.blocked_index is None
            and self.penalties is None
            and self.max_num_logprobs is None
        )

    @classmethod
    def build(
        cls,
        params: list[SamplingParams],
        prompt_token_ids: list[list[int]],
        output_token_ids: list[list[int]],
        generators: list[torch.Generator | None],
        eos_token_ids: Collection[int],
        vocab_size: int,
        device: torch.device,
    ) -> SamplingBatch:
        num_reqs = len(params)
        for name, values in (
            ("prompt_token_ids", prompt_token_ids),
            ("output_token_ids", output_token_ids),
            ("generators", generators),
        ):
            if len(values) != num_reqs:
                raise ValueError(f"{name} has {len(values)} rows, expected one per request ({num_reqs})")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")

        # One host -> device copy for all float parameters, one for top_k.
        floats = _to_device(
            [
                [p.temperature if p.is_greedy else _positive_float32(p.temperature) for p in params],
                [_positive_float32(p.top_p) for p in params],
                [p.min_p for p in params],
            ],
            torch.float32,
            device,
        )  # [3, num_reqs]
        temperature, top_p, min_p = floats.unbind(0)
        top_k = _to_device(
            [p.top_k if 0 < p.top_k < vocab_size else vocab_size for p in params], torch.int64, device
        )  # [num_reqs]

        blocked = [
            _blocked_tokens(p, len(out), eos_token_ids, vocab_size)
            for p, out in zip(params, output_token_ids, strict=True)
        ]
        blocked_pairs = [(row, token) for row, tokens in enumerate(blocked) for token in tokens]
        blocked_index = (
            _to_device(blocked_pairs, torch.int64, device).T if blocked_pairs else None
        )  # [2, num_blocked]

        num_greedy = sum(p.is_greedy for p in params)
        num_logprobs = [p.logprobs for p in params]
        requested = [k for k in num_logprobs if k is not None]
        return cls(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            min_p=min_p,
            is_greedy=temperature == 0.0,
            penalties=_build_penalties(params, prompt_token_ids, output_token_ids, vocab_size, device),
            generators=[None if p.is_greedy else g for p, g in zip(params, generators, strict=True)],
            blocked_token_ids=blocked,
            blocked_index=blocked_index,
            num_logprobs=num_logprobs,
            vocab_size=vocab_size,
            all_greedy=num_greedy == num_reqs,
            all_random=num_greedy == 0,
            # Greedy rows ignore the filters, so only sampled rows turn the filter passes on.
            needs_min_p=any(p.min_p > 0.0 and not p.is_greedy for p in params),
            needs_top_k=any(0 < p.top_k < vocab_size and not p.is_greedy for p in params),
            needs_top_p=any(p.top_p < 1.0 and not p.is_greedy for p in params),
            max_num_logprobs=max(requested) if requested else None,
        )


def _positive_float32(value: float) -> float:
    """A positive parameter as float32 keeps it: a value below float32's range (the parameters are
    validated as Python floats) would become 0 there, and a temperature of 0 means greedy to the device
    but not to the host, a top_p of 0 would drop every token, a repetition penalty of 0 divides by 0."""
    return max(value, FLOAT32_TINY)


def _to_device(data: list[Any], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A host list on ``device``. NOTE: on CUDA through pinned memory and without blocking: a copy from
    pageable memory waits for the device's queued work, which with async scheduling is the step in
    flight that this batch is built beside."""
    host = torch.tensor(data, dtype=dtype)
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def _blocked_tokens(
    params: SamplingParams, num_output_tokens: int, eos_token_ids: Collection[int], vocab_size: int
) -> list[int]:
    if num_output_tokens >= params.min_tokens:
        return []
    stop_ids = list(params.stop_token_ids or [])
    if not params.ignore_eos:  # every id that would end the request: a model may have several
        stop_ids.extend(eos_token_ids)
    # Ids past the logits width can never be sampled, so there is nothing to block.
    return sorted({t for t in stop_ids if 0 <= t < vocab_size})


def _build_penalties(
    params: list[SamplingParams],
    prompt_token_ids: list[list[int]],
    output_token_ids: list[list[int]],
    vocab_size: int,
    device: torch.device,
) -> PenaltyInputs | None:
    uses = [p.uses_penalties for p in params]
    if not any(uses):
        return None
    prompts = [ids if use else [] for ids, use in zip(prompt_token_ids, uses, strict=True)]
    outputs = [ids if use else [] for ids, use in zip(output_token_ids, uses, strict=True)]
    # At least one column, so scatter always has an index tensor of the right rank.
    max_prompt_len = max(1, max(len(ids) for ids in prompts))
    max_output_len = max(1, max(len(ids) for ids in outputs))
    # Prompt and output histories share one host -> device copy and are split on the device.
    history = _to_device(
        [
            p + [vocab_size] * (max_prompt_len - len(p)) + o + [vocab_size] * (max_output_len - len(o))
            for p, o in zip(prompts, outputs, strict=True)
        ],
        torch.int64,
        device,
    )  # [num_reqs, max_prompt_len + max_output_len]
    floats = _to_device(
        [
            [_positive_float32(p.repetition_penalty) for p in params],
            [p.presence_penalty for p in params],
            [p.frequency_penalty for p in params],
        ],
        torch.float32,
        device,
    )  # [3, num_reqs]
    repetition, presence, frequency = floats.unbind(0)
    return PenaltyInputs(
        repetition_penalty=repetition,
        presence_penalty=presence,
        frequency_penalty=frequency,
        prompt_token_ids=history[:, :max_prompt_len],
        output_token_ids=history[:, max_prompt_len:],
    )
