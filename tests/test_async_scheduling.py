"""Async scheduling (the next decode step scheduled and launched before the host reads this one's
tokens) gives exactly the synchronous engine's results: stop tokens and length stops mid-batch,
preemption, prefix caching, n > 1, beam search, penalties and min_tokens (which fall back), aborts."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import assert_all_blocks_free
from core_helpers import make_request, make_scheduler
from model_harness import build_hf_model, save_hf_model

from pagedllm import LLM, BeamSearchParams, SamplingParams
from pagedllm.core import KVCacheManager, Request, Scheduler, SchedulerConfig, StopCriteria


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_hf_model(build_hf_model("LlamaForCausalLM"), tmp_path_factory.mktemp("async-llama"))


def _llm(path: Path, async_scheduling: bool, **kwargs) -> LLM:
    # NOTE: a fixed KV budget and few sequences: on a GPU, profiling the free memory would see the
    # engine an earlier test still holds, and graphs for 256 sequences take long to capture.
    kwargs = {"kv_cache_memory_bytes": 1 << 26, "max_num_seqs": 32, **kwargs}
    return LLM(str(path), dtype="float32", async_scheduling=async_scheduling, **kwargs)


def _prompts(num: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1, 256) for _ in range(rng.randint(1, 40))] for _ in range(num)]


def _results(llm: LLM, prompts, params) -> list[tuple]:
    outputs = llm.generate(prompts, params, use_tqdm=False)
    assert_all_blocks_free(llm)
    return [
        (c.index, c.token_ids, c.finish_reason, c.stop_reason, c.cumulative_logprob)
        for o in outputs
        for c in o.outputs
    ]


def _both(path: Path, prompts, params, **kwargs) -> tuple[list[tuple], list[tuple], LLM]:
    sync = _results(_llm(path, False, **kwargs), prompts, params)
    llm = _llm(path, True, **kwargs)
    return sync, _results(llm, prompts, params), llm


def test_greedy_outputs_match_sync_with_stop_tokens_and_lengths_ending_requests_mid_batch(checkpoint):
    prompts = _prompts(12)
    free_run = _results(_llm(checkpoint, False), prompts, SamplingParams(temperature=0.0, max_tokens=24))
    # A token the sequences produce somewhere in the middle: as a stop token it ends them at
    # different steps, while others still run (their next step is already in flight).
    common = Counter(t for _, ids, *_ in free_run for t in ids[2:]).most_common(1)[0][0]
    params = [
        SamplingParams(temperature=0.0, max_tokens=5 + 2 * i, stop_token_ids=[common])
        for i in range(len(prompts))
    ]
    sync, overlapped, llm = _both(checkpoint, prompts, params)
    assert overlapped == sync
    assert {r[2] for r in sync} == {"stop", "length"}
    assert llm.engine.num_steps_scheduled_ahead > 0


def test_preemption_under_a_small_pool_matches_sync(checkpoint):
    prompts = [[(7 * i + j) % 250 + 1 for j in range(10 + i)] for i in range(8)]
    params = SamplingParams(temperature=0.0, max_tokens=12)
    # 16 blocks of 4 tokens for 8 sequences growing to ~20 tokens: preemptions by recompute.
    kv_bytes = 16 * 2 * 2 * 4 * 2 * 16 * 4  # blocks x K,V x layers x block x kv heads x head_dim x fp32
    sync, overlapped, llm = _both(
        checkpoint, prompts, params, block_size=4, max_model_len=64, kv_cache_memory_bytes=kv_bytes
    )
    assert llm.engine.scheduler.kv.num_blocks == 16
    assert overlapped == sync
    assert llm.kv_cache_stats()["num_preemptions"] > 0
    assert llm.engine.num_steps_scheduled_ahead > 0


# A small token budget keeps prompts waiting while steps run: async scheduling hashes their blocks then
# (``Scheduler.prepare_admissions``), and must find the hits the synchronous engine finds.
@pytest.mark.parametrize("budget", [{}, {"max_model_len": 128, "max_num_batched_tokens": 128}])
def test_prefix_cache_hits_match_sync(checkpoint, budget):
    system = list(range(1, 40))
    prompts = [system + p for p in _prompts(6, seed=3)]
    params = SamplingParams(temperature=0.0, max_tokens=10)
    results, hits = {}, {}
    for mode in (False, True):
        llm = _llm(checkpoint, mode, block_size=8, **budget)
        # The second batch finds the first one's blocks (system prompt and whole prompts) cached.
        results[mode] = _results(llm, prompts[:3], params) + _results(llm, prompts, params)
        hits[mode] = llm.kv_cache_stats()["prefix_cache_hits"]
        assert hits[mode] > 0
    assert results[True] == results[False]
    assert hits[True] == hits[False]


def test_parallel_sampling_and_seeded_random_sampling_match_sync(checkpoint):
    prompts = _prompts(4, seed=5)
    params = [
        SamplingParams(n=3, temperature=0.8, top_p=0.9, seed=11 + i, max_tokens=9 + i) for i in range(4)
    ]
    sync, overlapped, _ = _both(checkpoint, prompts, params)
    assert overlapped == sync


def test_penalties_logprobs_and_min_tokens_match_sync(checkpoint):
    prompts = _prompts(6, seed=7)
    params = [
        SamplingParams(temperature=0.0, max_tokens=10, repetition_penalty=1.3),
        SamplingParams(temperature=0.0, max_tokens=10, min_tokens=6, stop_token_ids=[5, 9, 17]),
        SamplingParams(temperature=0.0, max_tokens=10, logprobs=2),
        SamplingParams(temperature=0.0, max_tokens=10, frequency_penalty=0.5),
        SamplingParams(temperature=0.0, max_tokens=10),
        SamplingParams(temperature=0.0, max_tokens=10, logprobs=0),
    ]
    sync, overlapped, _ = _both(checkpoint, prompts, params)
    assert overlapped == sync


def test_beam_search_matches_sync(checkpoint):
    prompts = _prompts(3, seed=9)
    params = BeamSearchParams(beam_width=3, max_tokens=6)
    sync = _llm(checkpoint, False).beam_search(prompts, params)
    overlapped = _llm(checkpoint, True).beam_search(prompts, params)
    assert [
        [(s.token_ids, s.cumulative_logprob, s.finish_reason) for s in o.sequences] for o in overlapped
    ] == [[(s.token_ids, s.cumulative_logprob, s.finish_reason) for s in o.sequences] for o in sync]


def test_abort_while_a_step_is_in_flight_frees_everything_and_others_finish_as_in_sync(checkpoint):
    prompts = _prompts(6, seed=13)
    params = SamplingParams(temperature=0.0, max_tokens=16)
    expected = _results(_llm(checkpoint, False), prompts[1:], params)
    llm = _llm(checkpoint, True)
    engine = llm.engine
    for i, prompt in enumerate(prompts):
        engine.add_request(str(i), prompt, params)
    finished = {}
    for _ in range(6):
        for output in engine.step():
            assert not output.finished
    assert engine._in_flight is not None
    engine.abort_request("0")
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.finished:
                finished[output.request_id] = output
    assert "0" not in finished
    got = [finished[str(i)].outputs[0] for i in range(1, len(prompts))]
    assert [(0, c.token_ids, c.finish_reason, c.stop_reason, c.cumulative_logprob) for c in got] == expected
    assert_all_blocks_free(llm)


def test_schedule_ahead_continues_every_sampled_request_but_those_ending_by_length():
    scheduler = make_scheduler(num_blocks=32, block_size=4)
    short = make_request(num_prompt_tokens=5, max_tokens=2)
    long = make_request(num_prompt_tokens=7, max_tokens=10)
    for request in (short, long):
        scheduler.add_request(request)
    first = scheduler.schedule()
    scheduler.update_from_output(first, {short.request_id: 3, long.request_id: 4})
    in_flight = scheduler.schedule()  # both decode; "short" makes its last token in this step
    ahead = scheduler.schedule_ahead(in_flight)
    assert ahead is not None
    (item,) = ahead.scheduled
    assert item.request_id == long.request_id and item.token_from_previous_step
    assert item.start_position == long.num_tokens  # the token the in-flight step samples
    assert len(item.block_ids) * 4 >= item.start_position + 1
    assert long.num_computed_tokens == long.num_tokens - 1  # nothing changes before the update
    scheduler.update_from_output(in_flight, {short.request_id: 5, long.request_id: 6})
    assert short.is_finished and long.num_computed_tokens == long.num_tokens - 1
    scheduler.update_from_output(ahead, {long.request_id: 8})
    assert long.output_token_ids == [4, 6, 8]
    scheduler.check_invariants()


def test_an_id_reused_while_its_old_prefill_is_in_flight_keeps_the_synchronous_prefix_hits(checkpoint):
    # The old request's chunk in flight must not be hashed as the new request's blocks (found by a
    # review: the new request's hashes were poisoned and its prefix was never found again).
    greedy = SamplingParams(temperature=0.0, max_tokens=12)
    old_prompt = [(7 * j) % 250 + 1 for j in range(30)]
    new_prompt = [11, 22, 33, 44, 55, 66]
    hits = {}
    for mode in (False, True):
        engine = _llm(checkpoint, mode, block_size=4, enable_prefix_caching=True).engine
        engine.add_request("0", old_prompt, greedy)
        engine.add_request("1", [5] * 10, greedy)
        engine.step()  # the prefill of both is launched
        engine.abort_request("0")
        engine.add_request("0", new_prompt, greedy)
        finished = {}
        while engine.has_unfinished_requests():
            finished.update({o.request_id: o for o in engine.step() if o.finished})
        sequence = new_prompt + list(finished["0"].outputs[0].token_ids)
        before = engine.scheduler.kv.num_prefix_hits
        engine.add_request("2", [*sequence, 99], SamplingParams(temperature=0.0, max_tokens=1))
        while engine.has_unfinished_requests():
            engine.step()
        hits[mode] = engine.scheduler.kv.num_prefix_hits - before
    assert hits[True] == hits[False] == 16


def test_a_seat_the_in_flight_step_frees_is_taken_only_after_that_step():
    scheduler = make_scheduler(num_blocks=32, block_size=4, max_num_seqs=2, max_num_batched_tokens=16)
    ending = make_request(num_prompt_tokens=5, max_tokens=2)
    going_on, waiting = make_request(num_prompt_tokens=9), make_request(num_prompt_tokens=3)
    for request in (ending, going_on, waiting):
        scheduler.add_request(request)
    first = scheduler.schedule()  # both seats taken
    scheduler.update_from_output(first, {ending.request_id: 3, going_on.request_id: 4})
    in_flight = scheduler.schedule()  # "ending" makes its last token in this step
    ahead = scheduler.schedule_ahead(in_flight)
    assert ahead is not None
    assert [item.request_id for item in ahead.scheduled] == [going_on.request_id]
    scheduler.update_from_output(in_flight, {ending.request_id: 2, going_on.request_id: 2})
    assert ending.is_finished
    following = scheduler.schedule_ahead(ahead)
    assert following is not None and waiting.request_id in {item.request_id for item in following.scheduled}


def test_schedule_ahead_admits_behind_the_decodes_and_announces_the_newcomer():
    scheduler = make_scheduler(num_blocks=32, block_size=4, max_num_seqs=4, max_num_batched_tokens=8)
    running = make_request(num_prompt_tokens=5, max_tokens=8)
    scheduler.add_request(running)
    first = scheduler.schedule()
    scheduler.update_from_output(first, {running.request_id: 3})
    in_flight = scheduler.schedule()
    newcomer = make_request(num_prompt_tokens=10, max_tokens=4)
    scheduler.add_request(newcomer)
    ahead = scheduler.schedule_ahead(in_flight)
    assert ahead is not None
    decode, chunk = ahead.scheduled
    assert decode.request_id == running.request_id and decode.token_from_previous_step
    # The budget of 8 less the decode's token: a chunk of 7 of the newcomer's 10 prompt tokens.
    assert chunk.request_id == newcomer.request_id and not chunk.token_from_previous_step
    assert list(chunk.token_ids) == newcomer.prompt_token_ids[:7] and not chunk.needs_sample
    assert [new.request_id for new in ahead.new_requests] == [newcomer.request_id]
    scheduler.update_from_output(in_flight, {running.request_id: 6})
    scheduler.update_from_output(ahead, {running.request_id: 7})
    assert newcomer.num_computed_tokens == 7
    # The chunk in flight is continued ahead: its last 3 tokens, which end the prompt and sample.
    following = scheduler.schedule_ahead(ahead)
    assert following is not None
    rest = next(item for item in following.scheduled if item.request_id == newcomer.request_id)
    assert (rest.start_position, rest.needs_sample) == (7, True)
    assert list(rest.token_ids) == newcomer.prompt_token_ids[7:]
    scheduler.check_invariants()


def test_schedule_ahead_leaves_a_request_that_would_hit_blocks_in_flight_to_schedule():
    config = SchedulerConfig(max_num_seqs=4, max_num_batched_tokens=64, max_model_len=64)
    scheduler = Scheduler(config, KVCacheManager(32, 4, enable_prefix_caching=True))
    decoding = make_request(num_prompt_tokens=3, max_tokens=8)
    scheduler.add_request(decoding)
    first = scheduler.schedule()
    scheduler.update_from_output(first, {decoding.request_id: 3})
    shared = [11, 12, 13, 14, 15, 16, 17, 18]
    owner = Request("owner", [*shared, 1, 2], StopCriteria(max_tokens=4))
    scheduler.add_request(owner)
    in_flight = scheduler.schedule()  # the decode, and the owner's prompt: it fills the shared blocks
    follower = Request("follower", [*shared, 9, 9, 9], StopCriteria(max_tokens=4))
    scheduler.add_request(follower)
    ahead = scheduler.schedule_ahead(in_flight)
    assert ahead is not None and "follower" not in {item.request_id for item in ahead.scheduled}
    scheduler.update_from_output(in_flight, {decoding.request_id: 5, "owner": 6})
    scheduler.update_from_output(ahead, {decoding.request_id: 5, "owner": 6})
    # Once the owner's blocks are in the prefix cache the follower is admitted, finding them.
    later = scheduler.schedule_ahead(ahead) or scheduler.schedule()
    assert "follower" in {item.request_id for item in later.scheduled}
    assert follower.num_cached_tokens == len(shared)


def test_schedule_ahead_declines_while_requests_wait_when_admissions_ahead_are_off():
    scheduler = make_scheduler(num_blocks=32, block_size=4, max_num_seqs=1)
    scheduler.admit_ahead = False
    first_request = make_request(num_prompt_tokens=5, max_tokens=8)
    scheduler.add_request(first_request)
    scheduler.add_request(make_request(num_prompt_tokens=5, max_tokens=8))
    first = scheduler.schedule()
    scheduler.update_from_output(first, {first_request.request_id: 3})
    in_flight = scheduler.schedule()
    assert scheduler.schedule_ahead(in_flight) is None


def test_async_scheduling_is_on_by_default_only_with_cuda(checkpoint):
    kwargs = {"kv_cache_memory_bytes": 1 << 26, "max_num_seqs": 8}
    assert not LLM(str(checkpoint), dtype="float32", device="cpu", **kwargs).engine.async_scheduling
    if torch.cuda.is_available():
        assert LLM(str(checkpoint), **kwargs).engine.async_scheduling


@pytest.mark.slow
def test_stop_strings_and_streamed_text_on_smollm2_match_sync():
    prompts = ["The capital of France is", "List three colors:", "def fibonacci(n):", "Once upon a time"]
    params = [
        SamplingParams(temperature=0.0, max_tokens=24, stop=[" the", "\n"]),
        SamplingParams(temperature=0.0, max_tokens=16, stop=[","], include_stop_str_in_output=True),
        SamplingParams(temperature=0.0, max_tokens=20),
        SamplingParams(temperature=0.0, max_tokens=12, logprobs=1),
    ]
    texts = {}
    for mode in (False, True):
        llm = LLM(dtype="float32", async_scheduling=mode, max_model_len=256)
        outputs = llm.generate(prompts, params, use_tqdm=False)
        texts[mode] = [
            (c.text, c.token_ids, c.finish_reason, c.stop_reason) for o in outputs for c in o.outputs
        ]
        # Streamed: every step's cumulative text, as the server sees it.
        engine = llm.engine
        for i, prompt in enumerate(prompts):
            engine.add_request(f"s{i}", prompt, params[i])
        stream = []
        while engine.has_unfinished_requests():
            stream.extend((o.request_id, o.outputs[0].text, o.finished) for o in engine.step())
        texts[mode].append(sorted(stream))
        assert_all_blocks_free(llm)
    assert texts[True] == texts[False]
    assert any(reason == "stop" for _, _, reason, _ in texts[False][:4])


@pytest.mark.parametrize("is_async", [False, True])
def test_a_request_id_reused_after_it_finished_samples_with_its_new_parameters(checkpoint, is_async):
    # The runner reuses a step's sampling tensors while the same ids are sampled: a new request under
    # a finished one's id must not inherit them.
    prompts = _prompts(3, seed=17)
    greedy = SamplingParams(temperature=0.0, max_tokens=8)
    expected = _results(_llm(checkpoint, False), prompts, greedy)
    engine = _llm(checkpoint, is_async).engine
    hot = SamplingParams(temperature=5.0, seed=3, max_tokens=8)
    for params in (hot, greedy):
        for i, prompt in enumerate(prompts):
            engine.add_request(str(i), prompt, params)
        finished = {}
        while engine.has_unfinished_requests():
            finished.update((o.request_id, o) for o in engine.step() if o.finished)
    got = [
        (0, c.token_ids, c.finish_reason, c.stop_reason, c.cumulative_logprob)
        for c in (finished[str(i)].outputs[0] for i in range(len(prompts)))
    ]
    assert got == expected


def _run_to_end(engine) -> dict:
    finished = {}
    while engine.has_unfinished_requests():
        finished.update((o.request_id, o) for o in engine.step() if o.finished)
    return finished


@pytest.mark.parametrize("is_async", [False, True])
def test_an_id_reused_while_its_old_request_has_a_step_in_flight_gets_none_of_its_tokens(
    checkpoint, is_async
):
    # Found in review: the step launched ahead still carries the old request's token; looked up by id
    # alone, it landed on the newcomer as its first output (aborted, or stopped by a stop token).
    old_prompts, new_prompt = _prompts(3, seed=23), _prompts(1, seed=29)[0]
    greedy = SamplingParams(temperature=0.0, max_tokens=10)
    expected = _results(_llm(checkpoint, False), [new_prompt], greedy)[0][1]

    engine = _llm(checkpoint, is_async).engine  # aborted mid-run, the id reused at once
    for i, prompt in enumerate(old_prompts):
        engine.add_request(str(i), prompt, SamplingParams(temperature=0.0, max_tokens=30))
    for _ in range(4):
        engine.step()
    assert (engine._in_flight is not None) == is_async
    engine.abort_request("0")
    engine.add_request("0", new_prompt, greedy)
    assert _run_to_end(engine)["0"].outputs[0].token_ids == expected

    free_run = _results(
        _llm(checkpoint, False), old_prompts[:1], SamplingParams(temperature=0.0, max_tokens=8)
    )
    stop = free_run[0][1][3]
    engine = _llm(checkpoint, is_async).engine  # stopped by a stop token, the step ahead left in flight
    engine.add_request(
        "x", old_prompts[0], SamplingParams(temperature=0.0, max_tokens=30, stop_token_ids=[stop])
    )
    _run_to_end(engine)
    engine.add_request("x", new_prompt, greedy)
    assert _run_to_end(engine)["x"].outputs[0].token_ids == expected


@pytest.mark.parametrize("old_kind", ["beam search", "plain request"])
def test_a_beam_search_reusing_an_id_with_a_step_in_flight_gets_none_of_its_top_k(checkpoint, old_kind):
    # Found in review: the in-flight step's top-K of the aborted request went to the new search by id
    # (AssertionError in fork_beam, then that search waited forever; KeyError after a plain request).
    params = BeamSearchParams(beam_width=2, max_tokens=6)
    old_prompt, new_prompt = _prompts(2, seed=31)
    expected = _llm(checkpoint, False).beam_search([new_prompt], params)[0]
    llm = _llm(checkpoint, True)
    engine = llm.engine
    if old_kind == "beam search":
        engine.add_beam_search_request(engine.make_beam_search_request(old_prompt, params, "b"))
    else:
        engine.add_request("b", old_prompt, SamplingParams(temperature=0.0, max_tokens=6))
    engine.step()
    assert engine._in_flight is not None
    engine.abort_request("b")
    engine.add_beam_search_request(engine.make_beam_search_request(new_prompt, params, "b"))
    got = _run_to_end(engine)["b"]
    assert [c.token_ids for c in got.outputs] == [s.token_ids for s in expected.sequences]
    assert_all_blocks_free(llm)


def test_the_server_engine_core_streams_the_same_results_with_async_scheduling(checkpoint):
    """The server's engine core process over an engine that launches steps ahead: requests arriving
    while others decode, one aborted mid-way; every other stream ends with the offline result, and
    every block is free at the end."""
    import asyncio

    from pagedllm.config import EngineConfig
    from pagedllm.engine.async_engine import AsyncEngine

    prompts = _prompts(6, seed=21)
    params = SamplingParams(temperature=0.0, max_tokens=12)
    expected = [ids for _, ids, *_ in _results(_llm(checkpoint, False), prompts, params)]
    config = EngineConfig(
        model=str(checkpoint),
        dtype="float32",
        async_scheduling=True,
        kv_cache_memory_bytes=1 << 26,
        max_num_seqs=32,
    )
    server = AsyncEngine.launch(config)  # a real engine core process

    async def run() -> tuple[list[list[int] | None], dict]:
        await server.start()

        async def one(i: int) -> list[int] | None:
            await asyncio.sleep(0.01 * i)  # arrivals spread over the first steps
            last = None
            async for output in server.generate(prompts[i], params, request_id=f"r{i}"):
                last = output
                if i == 5 and len(output.outputs[0].token_ids) >= 3:
                    return None  # leaving the stream aborts the request
            assert last is not None and last.finished
            return last.outputs[0].token_ids

        try:
            got = await asyncio.gather(*(one(i) for i in range(len(prompts))))
            for _ in range(200):  # the abort's frees arrive with the core's next message
                stats = await server.stats()
                if stats["num_free_blocks"] == stats["num_blocks"]:
                    break
                await asyncio.sleep(0.05)
            return got, stats
        finally:
            await server.shutdown()

    got, stats = asyncio.run(run())
    assert got[:5] == expected[:5] and got[5] is None
    assert stats["num_steps_scheduled_ahead"] > 0
    assert stats["num_free_blocks"] == stats["num_blocks"] and stats["num_running"] == 0


def test_an_id_reused_right_after_an_abort_gets_none_of_the_old_requests_deltas(checkpoint):
    """Found in review: the API process routed the core's deltas by the caller's id, so a request
    re-added under an aborted one's id received what the core had already sent for the old one. Each
    add now has its own id in the core. 12 rounds of abort-then-re-add, each checked exactly."""
    import asyncio

    from pagedllm.config import EngineConfig
    from pagedllm.engine.async_engine import AsyncEngine

    old_prompt, new_prompt = _prompts(2, seed=31)
    new_params = SamplingParams(temperature=0.0, max_tokens=6)
    expected = _results(_llm(checkpoint, False), [new_prompt], new_params)[0][1]
    config = EngineConfig(
        model=str(checkpoint), dtype="float32", kv_cache_memory_bytes=1 << 26, max_num_seqs=8
    )
    server = AsyncEngine.launch(config)  # a real engine core process

    async def run() -> list[list[int]]:
        await server.start()
        got = []
        try:
            for k in range(12):
                old = server.add_request(
                    old_prompt, SamplingParams(temperature=0.0, max_tokens=40), request_id="r"
                )
                async for output in old:
                    if len(output.outputs[0].token_ids) >= 2 + k % 4:
                        break
                old.abort()  # while the core may still be computing, or sending, its next tokens
                last = None
                async for output in server.generate(new_prompt, new_params, request_id="r"):
                    last = output
                assert last is not None and last.finished
                got.append(last.outputs[0].token_ids)
        finally:
            await server.shutdown()
        return got

    assert asyncio.run(run()) == [expected] * 12
