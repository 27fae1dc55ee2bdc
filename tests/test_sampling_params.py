from __future__ import annotations

from typing import Any

import pytest

from pagedllm.outputs import CompletionOutput, Logprob, RequestOutput
from pagedllm.sampling_params import MAX_LOGPROBS, SamplingParams, SamplingType


def test_defaults_match_vllm() -> None:
    params = SamplingParams()
    assert params.n == 1
    assert params.temperature == 1.0
    assert params.top_p == 1.0
    assert params.top_k == 0
    assert params.min_p == 0.0
    assert params.seed is None
    assert params.max_tokens == 16
    assert params.min_tokens == 0
    assert params.stop == []
    assert params.stop_token_ids == []
    assert params.ignore_eos is False
    assert params.repetition_penalty == 1.0
    assert params.presence_penalty == 0.0
    assert params.frequency_penalty == 0.0
    assert params.logprobs is None
    assert params.skip_special_tokens is True
    assert params.include_stop_str_in_output is False


INVALID: list[tuple[str, Any]] = [
    ("n", 0),
    ("n", 1.0),
    ("n", True),
    ("temperature", -0.1),
    ("temperature", "0.7"),
    ("temperature", float("nan")),
    ("temperature", float("inf")),
    ("temperature", True),
    ("top_p", 0.0),
    ("top_p", 1.01),
    ("top_p", -0.5),
    ("top_p", None),
    ("top_k", -2),
    ("top_k", 2.0),
    ("top_k", True),
    ("min_p", -0.01),
    ("min_p", 1.5),
    ("seed", 1.5),
    ("seed", "42"),
    ("seed", 2**64),
    ("max_tokens", 0),
    ("max_tokens", -3),
    ("max_tokens", 16.0),
    ("min_tokens", -1),
    ("min_tokens", 17),  # > max_tokens=16
    ("min_tokens", 1.0),
    ("stop", ""),
    ("stop", ["ok", ""]),
    ("stop", ["ok", 3]),
    ("stop", 3),
    ("stop_token_ids", [1, -1]),
    ("stop_token_ids", [1, 2.0]),
    ("stop_token_ids", [True]),
    ("stop_token_ids", 5),
    ("ignore_eos", 1),
    ("skip_special_tokens", "yes"),
    ("include_stop_str_in_output", None),
    ("repetition_penalty", 0.0),
    ("repetition_penalty", -1.0),
    ("presence_penalty", 2.5),
    ("presence_penalty", -2.01),
    ("frequency_penalty", 3.0),
    ("frequency_penalty", -2.5),
    ("logprobs", -1),
    ("logprobs", MAX_LOGPROBS + 1),
    ("logprobs", 2.0),
]


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{f}={v!r}" for f, v in INVALID])
def test_invalid_field_raises_value_error_naming_field_and_value(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field) as excinfo:
        SamplingParams(**{field: value})
    assert repr(value) in str(excinfo.value) or str(value) in str(excinfo.value)


def test_range_error_states_allowed_range() -> None:
    with pytest.raises(ValueError, match=r"top_p must be a finite number in \(0.0, 1.0\], got 1.5"):
        SamplingParams(top_p=1.5)
    with pytest.raises(ValueError, match=r"logprobs must be an int in \[0, 20\], got 21"):
        SamplingParams(logprobs=21)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 0),
        ("temperature", 0.0),
        ("top_p", 1.0),
        ("top_p", 1e-9),
        ("top_k", -1),
        ("top_k", 0),
        ("top_k", 50),
        ("min_p", 1.0),
        ("seed", 0),
        ("seed", -7),
        ("max_tokens", None),
        ("max_tokens", 1),
        ("presence_penalty", -2.0),
        ("frequency_penalty", 2.0),
        ("repetition_penalty", 1e-3),
        ("logprobs", 0),
        ("logprobs", MAX_LOGPROBS),
    ],
)
def test_boundary_values_are_accepted(field: str, value: Any) -> None:
    SamplingParams(**{field: value})


def test_top_k_minus_one_is_normalized_to_zero() -> None:
    assert SamplingParams(top_k=-1).top_k == 0


def test_stop_string_is_normalized_to_list() -> None:
    assert SamplingParams(stop="\n").stop == ["\n"]
    assert SamplingParams(stop=["a", "b"]).stop == ["a", "b"]


def test_stop_token_ids_are_copied_into_a_list() -> None:
    ids = [7, 8]
    params = SamplingParams(stop_token_ids=ids)
    ids.append(9)
    assert params.stop_token_ids == [7, 8]


def test_min_tokens_may_exceed_default_when_max_tokens_is_none() -> None:
    assert SamplingParams(max_tokens=None, min_tokens=100).min_tokens == 100


def test_zero_temperature_is_greedy_whatever_the_seed() -> None:
    assert SamplingParams(temperature=0.0).is_greedy
    assert SamplingParams(temperature=0.0, seed=3).sampling_type is SamplingType.GREEDY
    assert SamplingParams(temperature=0.5).sampling_type is SamplingType.RANDOM
    assert SamplingParams(temperature=0.5, seed=3).sampling_type is SamplingType.RANDOM_SEED
    assert not SamplingParams(temperature=0.5).is_greedy


def test_uses_penalties_only_when_a_penalty_is_not_neutral() -> None:
    assert not SamplingParams().uses_penalties
    assert SamplingParams(repetition_penalty=1.1).uses_penalties
    assert SamplingParams(presence_penalty=-0.5).uses_penalties
    assert SamplingParams(frequency_penalty=0.5).uses_penalties


def test_params_are_slotted() -> None:
    with pytest.raises(AttributeError):
        SamplingParams().not_a_field = 1  # type: ignore[attr-defined]


def test_completion_output_is_finished_once_it_has_a_finish_reason() -> None:
    output = CompletionOutput(
        index=0,
        text="hi",
        token_ids=[5],
        cumulative_logprob=-0.5,
        logprobs=[{5: Logprob(logprob=-0.5, rank=1, decoded_token="hi")}],
    )
    assert not output.finished()
    output.finish_reason = "stop"
    assert output.finished()
    request = RequestOutput(
        request_id="r0", prompt="say", prompt_token_ids=[1, 2], outputs=[output], finished=True
    )
    assert request.num_cached_tokens == 0
    assert request.metrics is None
