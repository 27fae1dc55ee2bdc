"""RequestStream: the API process's reassembly of the engine core's per-step deltas."""

from __future__ import annotations

import asyncio

import pytest

from pagedllm.engine.core_messages import RequestDelta
from pagedllm.engine.request_stream import RequestStream, RequestTimes
from pagedllm.sampling_params import SamplingParams


def _stream(params: SamplingParams, aborted: list[str] | None = None) -> RequestStream:
    times = RequestTimes("r", arrival=0.0, num_prompt_tokens=3)
    return RequestStream("r", "hi", [1, 2, 3], params, times, (aborted if aborted is not None else []).append)


def _delta(tokens: list[int], text: str, finish: str | None = None, index: int = 0) -> RequestDelta:
    return ("r", [(index, tokens, text, None, None, finish, None)], finish is not None, 0)


def test_a_slow_reader_gets_every_delta_merged_into_one_cumulative_output():
    async def run() -> None:
        stream = _stream(SamplingParams(max_tokens=3))
        stream.apply(_delta([10], "a"), now=1.0)
        stream.apply(_delta([11], "b"), now=2.0)
        stream.apply(_delta([12], "c", finish="length"), now=3.0)
        outputs = [output async for output in stream]
        assert len(outputs) == 1
        (completion,) = outputs[0].outputs
        assert (completion.token_ids, completion.text, completion.finish_reason) == (
            [10, 11, 12],
            "abc",
            "length",
        )
        assert outputs[0].finished and stream.times.first_token == 1.0
        assert stream.times.num_generation_tokens == 3

    asyncio.run(run())


def test_an_output_handed_out_does_not_change_when_later_deltas_arrive():
    async def run() -> None:
        stream = _stream(SamplingParams(max_tokens=3))
        stream.apply(_delta([10], "a"), now=1.0)
        first = await stream.__anext__()
        stream.apply(_delta([11], "b"), now=2.0)
        assert first.outputs[0].token_ids == [10] and first.outputs[0].text == "a"
        second = await stream.__anext__()
        assert second.outputs[0].token_ids == [10, 11] and not second.finished

    asyncio.run(run())


def test_n2_deltas_go_to_their_own_completion():
    async def run() -> None:
        stream = _stream(SamplingParams(n=2, max_tokens=1, seed=0))
        stream.apply(
            (
                "r",
                [(0, [5], "x", None, None, "length", None), (1, [6], "y", None, None, "length", None)],
                True,
                0,
            ),
            1.0,
        )
        (output,) = [output async for output in stream]
        assert [(c.index, c.token_ids, c.text) for c in output.outputs] == [(0, [5], "x"), (1, [6], "y")]

    asyncio.run(run())


def test_an_error_ends_the_stream_and_abort_reports_only_an_unfinished_request():
    async def run() -> None:
        aborted: list[str] = []
        stream = _stream(SamplingParams(max_tokens=3), aborted)
        stream.apply(_delta([10], "a"), now=1.0)
        stream.fail(RuntimeError("core died"))
        with pytest.raises(RuntimeError, match="core died"):
            await stream.__anext__()
        stream.abort()  # already finished from the consumer's side
        assert aborted == []
        fresh = _stream(SamplingParams(max_tokens=3), aborted)
        fresh.abort()
        assert aborted == ["r"]

    asyncio.run(run())
