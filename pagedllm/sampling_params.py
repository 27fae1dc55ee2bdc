"""How to pick each generated token and when to stop: vLLM's ``SamplingParams`` names and defaults."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

# vLLM's default cap on ``logprobs``: larger values mean a bigger top-k and a bigger host copy per step.
MAX_LOGPROBS = 20
# The OpenAI range for presence and frequency penalties.
MAX_ABS_PENALTY = 2.0
# What ``torch.Generator.manual_seed`` accepts.
MIN_SEED = -(2**63)
MAX_SEED = 2**64 - 1


class SamplingType(enum.IntEnum):
    GREEDY = 0
    RANDOM = 1  # draws from the engine-wide generator
    RANDOM_SEED = 2  # draws from the request's own generator


@dataclass(slots=True)
class SamplingParams:
    """Per-request sampling and stopping rules.

    ``temperature=0`` is greedy. ``top_k`` of 0 or -1 is off (-1 is normalized to 0). ``max_tokens=None``
    generates until ``max_model_len``. ``stop`` is normalized to a list of strings and ``stop_token_ids``
    to a list of ints. ``logprobs=k`` returns, per generated token, the sampled token plus the ``k`` most
    likely ones.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    max_tokens: int | None = 16
    min_tokens: int = 0
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        _check_int("n", self.n, low=1)
        _check_float("temperature", self.temperature, low=0.0)
        _check_float("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        _check_int("top_k", self.top_k, low=-1, hint="0 or -1 = off")
        _check_float("min_p", self.min_p, low=0.0, high=1.0)
        if self.seed is not None:
            _check_int("seed", self.seed, low=MIN_SEED, high=MAX_SEED, hint="or None = engine-wide generator")
        if self.max_tokens is not None:
            _check_int("max_tokens", self.max_tokens, low=1, hint="or None = until max_model_len")
        _check_int("min_tokens", self.min_tokens, low=0)
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens must be <= max_tokens={self.max_tokens}, got {self.min_tokens}")
        _check_float("repetition_penalty", self.repetition_penalty, low=0.0, low_open=True)
        _check_float("presence_penalty", self.presence_penalty, low=-MAX_ABS_PENALTY, high=MAX_ABS_PENALTY)
        _check_float("frequency_penalty", self.frequency_penalty, low=-MAX_ABS_PENALTY, high=MAX_ABS_PENALTY)
        if self.logprobs is not None:
            _check_int("logprobs", self.logprobs, low=0, high=MAX_LOGPROBS)
        for name in ("ignore_eos", "skip_special_tokens", "include_stop_str_in_output"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        self.stop = _normalize_stop(self.stop)
        self.stop_token_ids = _normalize_stop_token_ids(self.stop_token_ids)
        if self.top_k == -1:
            self.top_k = 0

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def sampling_type(self) -> SamplingType:
        if self.is_greedy:
            return SamplingType.GREEDY
        return SamplingType.RANDOM if self.seed is None else SamplingType.RANDOM_SEED

    @property
    def uses_penalties(self) -> bool:
        return self.repetition_penalty != 1.0 or self.presence_penalty != 0.0 or self.frequency_penalty != 0.0


def _describe_range(low: float | None, high: float | None, low_open: bool) -> str:
    lower = None if low is None else f"{'>' if low_open else '>='} {low}"
    if lower is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}]"
    if lower is not None:
        return lower
    return "any value" if high is None else f"<= {high}"


def _check_int(
    name: str, value: object, low: int | None = None, high: int | None = None, hint: str = ""
) -> None:
    # NOTE: bool is a subclass of int; ``top_k=True`` is a bug, never a 1.
    allowed = f"an int {_describe_range(low, high, low_open=False)}{f' ({hint})' if hint else ''}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_float(
    name: str, value: object, low: float, high: float | None = None, low_open: bool = False
) -> None:
    allowed = _describe_range(low, high, low_open)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r} of type {type(value).__name__}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and value > high
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")


def _normalize_stop(stop: object) -> list[str]:
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"stop must be a str, a list of str or None, got {stop!r}")
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"stop must hold non-empty strings, got {item!r} in {stop!r}")
    return list(items)


def _normalize_stop_token_ids(stop_token_ids: object) -> list[int]:
    if stop_token_ids is None:
        return []
    if not isinstance(stop_token_ids, (list, tuple)):
        raise ValueError(f"stop_token_ids must be a list of int or None, got {stop_token_ids!r}")
    for token_id in stop_token_ids:
        if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
            raise ValueError(f"stop_token_ids must hold ints >= 0, got {token_id!r} in {stop_token_ids!r}")
    return list(stop_token_ids)
