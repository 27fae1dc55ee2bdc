"""Bad input gets a clear error naming the problem, and never costs another request its work."""

from __future__ import annotations

import pytest
from conftest import assert_all_blocks_free
from model_harness import build_hf_model, save_hf_model

from pagedllm import LLM, BeamSearchParams, SamplingParams
from pagedllm.model.default_model import default_model_path
from pagedllm.tokenizer.tokenizer import Tokenizer

GREEDY = SamplingParams(temperature=0.0, max_tokens=8)
GOOD_PROMPTS = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15, 16, 17]]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return save_hf_model(build_hf_model("LlamaForCausalLM"), tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def llm(tiny_path):
    return LLM(str(tiny_path), dtype="float32", max_model_len=64)


@pytest.fixture(scope="module")
def clean_outputs(llm):
    return [o.outputs[0].token_ids for o in llm.generate(GOOD_PROMPTS, GREEDY, use_tqdm=False)]


@pytest.mark.parametrize(
    ("bad_prompt", "message"),
    [
        ("", "prompt is empty"),
        ([], "prompt token ids are empty"),
        (list(range(1, 65)), "64 tokens, but max_model_len is 64"),
        ([1, 2, 256], r"token ids must be integers in \[0, 256\)"),
        ([1, -3], r"token ids must be integers in \[0, 256\)"),
        ("some text", "no tokenizer"),
    ],
)
def test_bad_prompt_is_named_and_the_rest_of_the_call_runs_unharmed(llm, clean_outputs, bad_prompt, message):
    with pytest.raises(ValueError, match=message) as error:
        llm.generate([*GOOD_PROMPTS[:2], bad_prompt, GOOD_PROMPTS[2]], GREEDY, use_tqdm=False)
    assert "request 2" in str(error.value)
    assert_all_blocks_free(llm)
    assert not llm.engine.has_unfinished_requests()
    # Nothing was queued, and the engine serves the same call without the bad prompt exactly as before.
    assert [
        o.outputs[0].token_ids for o in llm.generate(GOOD_PROMPTS, GREEDY, use_tqdm=False)
    ] == clean_outputs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.5),
        ("top_p", 0.0),
        ("top_k", -2),
        ("min_p", 1.5),
        ("max_tokens", 0),
        ("min_tokens", -1),
        ("repetition_penalty", 0.0),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -3.0),
        ("logprobs", 21),
        ("stop", [""]),
        ("stop_token_ids", [-1]),
        ("seed", "seven"),
    ],
)
def test_each_invalid_sampling_field_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value})


def test_a_request_in_flight_is_unaffected_by_a_rejected_one(llm, clean_outputs):
    engine = llm.engine
    for i, prompt in enumerate(GOOD_PROMPTS):
        engine.add_request(f"good-{i}", prompt, GREEDY)
    engine.step()  # the good ones are running now
    with pytest.raises(ValueError, match="max_model_len"):
        engine.add_request("too-long", list(range(1, 100)), GREEDY)
    with pytest.raises(ValueError, match="already in use"):
        engine.add_request("good-0", [1, 2], GREEDY)
    finished = {}
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.finished:
                finished[output.request_id] = output.outputs[0].token_ids
    assert [finished[f"good-{i}"] for i in range(3)] == clean_outputs
    assert_all_blocks_free(llm)


def test_max_model_len_the_kv_cache_cannot_hold_fails_at_start_up(tiny_path):
    # 2 layers x 2 KV heads x 16 dims x 4 bytes x 2 (K, V) = 512 bytes a token: 8 KiB = one block of 16.
    with pytest.raises(ValueError, match=r"max_model_len=64 does not fit in the KV cache: 1 blocks"):
        LLM(str(tiny_path), dtype="float32", max_model_len=64, kv_cache_memory_bytes=8192)


def test_max_model_len_past_the_models_positions_fails_at_start_up(tiny_path):
    # The tiny Llama has 128 positions: a longer context used to start, then fail inside a step as soon
    # as a sequence reached position 128 (the rotary table's end).
    with pytest.raises(
        ValueError, match=r"max_model_len=129 is more than the model's context \(max_position_"
    ):
        LLM(str(tiny_path), dtype="float32", max_model_len=129)
    fits = LLM(str(tiny_path), dtype="float32", max_model_len=128, kv_cache_memory_bytes=1 << 22)
    assert fits.engine.max_model_len == 128


def test_swap_preemption_without_swap_space_names_the_default_in_force(tiny_path):
    with pytest.raises(ValueError, match=r"swap_space is 0 GiB on cpu \(the default there; set swap_space\)"):
        LLM(str(tiny_path), device="cpu", dtype="float32", max_model_len=64, preemption_mode="swap")


def test_missing_model_path_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        LLM(str(missing))


def test_bad_engine_options_are_named():
    with pytest.raises(ValueError, match="block_size"):
        LLM(block_size=0)
    with pytest.raises(ValueError, match="dtype"):
        LLM(dtype="float8")


def test_prompts_and_params_of_different_lengths_are_refused(llm):
    with pytest.raises(ValueError, match="2 sampling params for 3 prompts"):
        llm.generate(GOOD_PROMPTS, [GREEDY, GREEDY], use_tqdm=False)


@pytest.mark.parametrize("prompts", [b"hello", bytearray(b"hi"), [b"hello", b"world"], [[5, 6], b"hi"]])
def test_bytes_prompts_are_refused_not_read_as_token_ids(llm, prompts):
    """bytes are a sequence of ints: unchecked, b"hello" ran as the token ids [104, 101, 108, 108, 111]."""
    with pytest.raises(TypeError, match="bytes"):
        llm.generate(prompts, GREEDY, use_tqdm=False)
    assert not llm.engine.has_unfinished_requests()


def test_stop_strings_on_a_model_without_a_tokenizer_are_refused_not_ignored(llm):
    """Without a tokenizer there is no text to find them in: accepted, they were silently never matched."""
    stopping = SamplingParams(temperature=0.0, max_tokens=8, stop=["anything"])
    with pytest.raises(ValueError, match=r"request 1.*stop strings need a tokenizer"):
        llm.generate(GOOD_PROMPTS[:2], [GREEDY, stopping], use_tqdm=False)
    assert not llm.engine.has_unfinished_requests()


def run_to_completion(engine, max_steps: int = 1000) -> dict[str, list[list[int]]]:
    """Every finished request's completions' token ids, by request id."""
    finished = {}
    for _ in range(max_steps):
        if not engine.has_unfinished_requests():
            break
        for output in engine.step():
            if output.finished:
                finished[output.request_id] = [completion.token_ids for completion in output.outputs]
    assert not engine.has_unfinished_requests(), f"still running after {max_steps} steps"
    return finished


def test_a_request_whose_completion_id_is_taken_is_refused_and_leaves_nothing_queued(llm, clean_outputs):
    # Completion i of request "x" runs as "x#i": a user may already have named a request so.
    engine = llm.engine
    engine.add_request("good#1", GOOD_PROMPTS[0], GREEDY)
    with pytest.raises(ValueError, match=r"'good#1', the id of its completion 1, is already in use"):
        engine.add_request("good", GOOD_PROMPTS[1], SamplingParams(temperature=0.0, max_tokens=8, n=2))
    assert list(engine.scheduler.requests) == ["good#1"]
    assert run_to_completion(engine) == {"good#1": [clean_outputs[0]]}
    assert_all_blocks_free(llm)


def test_a_user_id_equal_to_a_running_completions_id_is_refused(llm, clean_outputs):
    engine = llm.engine
    engine.add_request("pair", GOOD_PROMPTS[0], SamplingParams(temperature=0.0, max_tokens=8, n=2))
    engine.step()
    with pytest.raises(ValueError, match=r"'pair#1' is already in use"):
        engine.add_request("pair#1", GOOD_PROMPTS[1], GREEDY)
    assert run_to_completion(engine) == {"pair": [clean_outputs[0], clean_outputs[0]]}
    assert_all_blocks_free(llm)


def test_a_beam_search_names_its_beams_around_ids_users_hold(llm):
    params = BeamSearchParams(beam_width=2, max_tokens=6)
    alone = llm.beam_search([GOOD_PROMPTS[2]], params)[0]
    engine = llm.engine
    engine.add_request("b#beam1", GOOD_PROMPTS[0], GREEDY)  # the id the search's second beam would take
    engine.add_beam_search_request(engine.make_beam_search_request(GOOD_PROMPTS[2], params, "b"))
    finished = run_to_completion(engine)
    assert set(finished) == {"b#beam1", "b"}
    assert finished["b"] == [beam.token_ids for beam in alone.sequences]
    assert_all_blocks_free(llm)


@pytest.mark.parametrize("prefix_caching", [True, False])
def test_a_beam_search_is_admitted_only_if_a_preempted_beam_can_always_be_recomputed(
    tiny_path, prefix_caching
):
    # 20 blocks of 4 tokens (512 bytes a token). Width 2 over 40 prompt + 10 output tokens: the prompt's
    # 10 blocks shared and 3 more a beam (16) fit. A preempted beam recomputes; without prefix caching it
    # cannot find its sibling's prompt blocks and needs 13 of its own beside the sibling's 13 (26): it
    # would wait forever.
    llm = LLM(
        str(tiny_path),
        dtype="float32",
        max_model_len=64,
        block_size=4,
        kv_cache_memory_bytes=20 * 4 * 512,
        enable_prefix_caching=prefix_caching,
    )
    engine = llm.engine
    engine.add_request("older", list(range(100, 130)), SamplingParams(temperature=0.0, max_tokens=30))
    params = BeamSearchParams(beam_width=2, max_tokens=10)
    if prefix_caching:
        engine.add_beam_search_request(engine.make_beam_search_request(list(range(10, 50)), params, "beam"))
        assert set(run_to_completion(engine)) == {"older", "beam"}
        assert engine.scheduler.num_preemptions > 0
    else:
        with pytest.raises(ValueError, match="needs up to 26 KV blocks, more than the cache holds"):
            engine.make_beam_search_request(list(range(10, 50)), params, "beam")
        assert set(run_to_completion(engine)) == {"older"}
    assert_all_blocks_free(llm)


def test_preempted_beams_of_a_search_come_back_without_deadlocking_the_engine(tiny_path):
    """Found in review: the older search preempted every beam of the younger and evicted its cached
    prompt; the two beams re-admitted together in one step each recomputed the prompt in private blocks,
    the third found none, and its siblings waited for it holding the pool: no step ever ran again."""
    prompts = [[(37 * i + 11 * j) % 255 + 1 for j in range(32)] for i in range(2)]
    params = BeamSearchParams(beam_width=3, max_tokens=16, ignore_eos=True)

    def engine_of_six_blocks() -> LLM:  # 16-token blocks of 512 bytes a token
        return LLM(str(tiny_path), dtype="float32", max_model_len=96, kv_cache_memory_bytes=6 * 16 * 512)

    alone = [engine_of_six_blocks().beam_search([prompt], params)[0] for prompt in prompts]
    llm = engine_of_six_blocks()
    engine = llm.engine
    for i, prompt in enumerate(prompts):
        engine.add_beam_search_request(engine.make_beam_search_request(prompt, params, f"b{i}"))
    finished: dict[str, object] = {}
    for _ in range(200):
        if not engine.has_unfinished_requests():
            break
        finished.update({o.request_id: o for o in engine.step() if o.finished})
    assert not engine.has_unfinished_requests(), "the engine stopped making progress"
    assert engine.scheduler.num_preemptions > 0
    for i, search in enumerate(alone):
        together = finished[f"b{i}"]
        beams = [s.token_ids for s in search.sequences]
        assert [c.token_ids for c in together.outputs] == beams and {len(b) for b in beams} == {16}
    assert_all_blocks_free(llm)


def test_the_largest_seed_with_n_above_1_is_accepted_and_reproducible(llm):
    # Found in review: branch 1's seed (seed + 1) overflowed the range and was refused, naming a seed
    # the user never sent.
    params = SamplingParams(temperature=1.0, max_tokens=6, n=3, seed=2**64 - 1)
    first, again = (llm.generate([GOOD_PROMPTS[0]], params, use_tqdm=False)[0] for _ in range(2))
    completions = [c.token_ids for c in first.outputs]
    assert completions == [c.token_ids for c in again.outputs]
    assert len(completions) == 3
    assert_all_blocks_free(llm)


def test_a_beam_width_over_max_num_seqs_is_refused_as_n_is(tiny_path):
    # NOTE: a KV budget of its own: on a GPU, profiling would find the module's engine holding the memory.
    llm = LLM(
        str(tiny_path), dtype="float32", max_model_len=64, max_num_seqs=2, kv_cache_memory_bytes=1 << 22
    )
    with pytest.raises(ValueError, match="beam_width=4 is more than max_num_seqs=2"):
        llm.beam_search([GOOD_PROMPTS[0]], BeamSearchParams(beam_width=4, max_tokens=4))
    with pytest.raises(ValueError, match="n=4 is more than max_num_seqs=2"):
        llm.generate([GOOD_PROMPTS[0]], SamplingParams(n=4, max_tokens=4), use_tqdm=False)
    beams = llm.beam_search([GOOD_PROMPTS[0]], BeamSearchParams(beam_width=2, max_tokens=4))[0].sequences
    assert len(beams) == 2


@pytest.mark.parametrize("num_blocks", [64, 16])  # 16: a preemption, and the preempted come back
def test_a_beam_search_holds_its_widths_seats_so_no_step_runs_more_than_max_num_seqs(tiny_path, num_blocks):
    # Found in review: a search was admitted to one seat and its beams then forked into the running
    # batch, so three requests and a width-4 search ran 7 sequences a step with max_num_seqs=4.
    llm = LLM(
        str(tiny_path),
        dtype="float32",
        max_model_len=64,
        block_size=4,
        max_num_seqs=4,
        kv_cache_memory_bytes=num_blocks * 4 * 512,
    )
    engine = llm.engine
    for i in range(3):
        engine.add_request(
            f"r{i}", list(range(20 + 7 * i, 26 + 7 * i)), SamplingParams(temperature=0, max_tokens=20)
        )
    search = engine.make_beam_search_request(
        [9, 8, 7, 6, 5], BeamSearchParams(beam_width=4, max_tokens=10), "b"
    )
    engine.add_beam_search_request(search)
    most_rows = 0
    launch = engine.runner.launch

    def counting_launch(sched, *args, **kwargs):
        nonlocal most_rows
        most_rows = max(most_rows, len(sched.scheduled))
        engine.scheduler.check_invariants()  # seats taken <= max_num_seqs
        return launch(sched, *args, **kwargs)

    engine.runner.launch = counting_launch
    assert set(run_to_completion(engine)) == {"r0", "r1", "r2", "b"}
    assert most_rows == 4
    assert (engine.scheduler.num_preemptions > 0) == (num_blocks == 16)
    assert_all_blocks_free(llm)


def test_logprobs_or_beam_candidates_past_a_small_vocabulary_are_refused(tmp_path):
    # Found in review: a raw "index out of range" inside step(), which lost the batch's other requests.
    path = save_hf_model(build_hf_model("LlamaForCausalLM", vocab_size=16), tmp_path / "vocab-16")
    llm = LLM(str(path), dtype="float32", max_model_len=32, kv_cache_memory_bytes=1 << 22)
    with pytest.raises(ValueError, match="logprobs=20 is more than the vocabulary's 16 tokens"):
        llm.generate([[5, 6]], SamplingParams(max_tokens=3, logprobs=20), use_tqdm=False)
    with pytest.raises(ValueError, match="ranks 20 candidates a beam, more than the vocabulary's 16"):
        llm.beam_search([[5, 6]], BeamSearchParams(beam_width=10, max_tokens=2))
    assert len(llm.generate([[5, 6]], SamplingParams(max_tokens=3, logprobs=16), use_tqdm=False)) == 1
    assert_all_blocks_free(llm)


def test_a_text_prompt_smollms_tokenizer_maps_past_a_small_models_vocabulary_is_refused(tmp_path):
    # Found in review: a token-id prompt was range-checked but a text prompt was not, so a tokenizer of
    # more tokens than the model's embedding (SmolLM2's 49,152 beside 256 rows) crashed the step.
    path = save_hf_model(build_hf_model("LlamaForCausalLM"), tmp_path / "small-vocab")
    Tokenizer.from_gguf(default_model_path()).backend.save(str(path / "tokenizer.json"))
    llm = LLM(str(path), dtype="float32", max_model_len=32, kv_cache_memory_bytes=1 << 22)
    with pytest.raises(
        ValueError, match=r"prompt 'hello world' encodes to token id \d+, past the model's vocab"
    ):
        llm.generate(["hello world"], GREEDY, use_tqdm=False)
    assert len(llm.generate(["!"], GREEDY, use_tqdm=False)[0].outputs[0].token_ids) == 8  # id 0: in range
    assert_all_blocks_free(llm)


def test_a_request_id_that_is_not_a_string_is_refused(llm):
    with pytest.raises(TypeError, match="request_id must be a str, got int: 5"):
        llm.engine.add_request(5, GOOD_PROMPTS[0], GREEDY)
    assert not llm.engine.has_unfinished_requests()
