"""Beam search's public types, named as in vLLM: ``BeamSearchParams`` in, ``BeamSearchOutput`` out.

How beams are scored and when the search ends is documented on ``pagedllm.engine.beam_search``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pagedllm.sampling_params import _check_float, _check_int

# A beam request asks the worker for the top max(2, 1 + #EOS ids) * beam_width log-probabilities of
# every beam each step; past this width that top-k is no longer small next to the vocabulary.
MAX_BEAM_WIDTH = 64


@dataclass(slots=True)
class BeamSearchParams:
    """``beam_width`` beams, at most ``max_tokens`` generated tokens each.

    ``length_penalty`` is the exponent of the length that divides a finished beam's summed log-probability
    (transformers' ``length_penalty``: > 0 favours longer beams, < 0 shorter ones, 0 ranks by the raw sum).
    ``ignore_eos`` lets no beam finish before ``max_tokens``.
    """

    beam_width: int
    max_tokens: int
    ignore_eos: bool = False
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        _check_int("beam_width", self.beam_width, low=1, high=MAX_BEAM_WIDTH)
        _check_int("max_tokens", self.max_tokens, low=1)
        if not isinstance(self.ignore_eos, bool):
            raise ValueError(f"ignore_eos must be a bool, got {self.ignore_eos!r}")
        _check_float("length_penalty", self.length_penalty, low=-float("inf"))


@dataclass(slots=True)
class BeamSearchSequence:
    """One finished beam: its generated tokens (with the EOS that ended it, if one did)."""

    token_ids: list[int]
    text: str  # the generated tokens decoded without special tokens ("" for a model without tokenizer)
    cumulative_logprob: float  # sum of the tokens' log-probabilities
    score: float  # cumulative_logprob / len(token_ids) ** length_penalty: what the beams are ranked by
    finish_reason: str  # "stop" (an EOS token) or "length" (max_tokens or max_model_len)


@dataclass(slots=True)
class BeamSearchOutput:
    """A prompt's ``beam_width`` best beams, best first."""

    prompt: str | None
    prompt_token_ids: list[int]
    sequences: list[BeamSearchSequence] = field(default_factory=list)
