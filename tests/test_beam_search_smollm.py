"""Beam search on the real SmolLM2 weights: the same beams, in the same order, as transformers'
``generate(num_beams=k)``, whatever else shares the batch and however tight the KV pool is."""

from __future__ import annotations

import pytest
from conftest import assert_all_blocks_free
from smollm_reference import REFERENCE_PROMPTS, reference_beam_search

from pagedllm import LLM, BeamSearchParams, SamplingParams
from pagedllm.worker.kv_cache import kv_cache_bytes_per_block

pytestmark = pytest.mark.slow

# Plain text, a question, code, a chat turn, and a chat turn whose beams end on EOS within a few tokens.
BEAM_PROMPTS = [
    *(REFERENCE_PROMPTS[i] for i in (0, 1, 2, 3, 6)),
    "<|im_start|>user\nAnswer with one word, yes or no: is the sky blue?<|im_end|>\n<|im_start|>assistant\n",
]
MAX_TOKENS = 24


@pytest.mark.parametrize(("beam_width", "length_penalty"), [(2, 1.0), (4, 1.0), (2, 0.0)])
def test_beam_search_returns_transformers_beams_in_order(smollm, beam_width, length_penalty):
    reference = reference_beam_search(BEAM_PROMPTS, MAX_TOKENS, beam_width, length_penalty)
    engine = smollm.engine
    assert sorted({engine.eos_token_id, *engine.arch.eos_token_ids}) == reference[0]["eos_token_ids"]

    params = BeamSearchParams(beam_width=beam_width, max_tokens=MAX_TOKENS, length_penalty=length_penalty)
    outputs = smollm.beam_search(BEAM_PROMPTS, params)

    finish_reasons = set()
    for prompt, expected, output in zip(BEAM_PROMPTS, reference, outputs, strict=True):
        assert output.prompt_token_ids == expected["prompt_token_ids"], prompt
        assert [s.token_ids for s in output.sequences] == expected["sequences"], prompt
        assert [s.score for s in output.sequences] == pytest.approx(expected["scores"], abs=1e-3), prompt
        finish_reasons |= {s.finish_reason for s in output.sequences}
    assert finish_reasons == {"stop", "length"}  # beams ended both ways
    assert_all_blocks_free(smollm)


def test_beam_search_shares_blocks_and_batches_with_other_requests(smollm):
    """Beams and sampled requests in one engine, stepped together: each gets what it gets alone."""
    params = BeamSearchParams(beam_width=4, max_tokens=MAX_TOKENS)
    greedy = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS)
    alone_beams = smollm.beam_search(BEAM_PROMPTS[:2], params)
    alone_greedy = smollm.generate(BEAM_PROMPTS[2:4], greedy, use_tqdm=False)

    engine = smollm.engine
    for i, prompt in enumerate(BEAM_PROMPTS[:2]):
        engine.add_beam_search_request(engine.make_beam_search_request(prompt, params, f"beam-{i}"))
    for i, prompt in enumerate(BEAM_PROMPTS[2:4]):
        engine.add_request(f"greedy-{i}", prompt, greedy)
    finished = {}
    max_shared = 0
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.finished:
                finished[output.request_id] = output
        max_shared = max(max_shared, engine.kv_cache_stats()["num_shared_blocks"])

    assert max_shared > 0, "beams never shared a block"
    for i, alone in enumerate(alone_beams):
        assert [c.token_ids for c in finished[f"beam-{i}"].outputs] == [s.token_ids for s in alone.sequences]
    for i, alone in enumerate(alone_greedy):
        assert finished[f"greedy-{i}"].outputs[0].token_ids == alone.outputs[0].token_ids
    assert_all_blocks_free(smollm)


def test_beam_search_under_kv_pressure_preempts_and_returns_the_same_beams(smollm):
    params = BeamSearchParams(beam_width=4, max_tokens=MAX_TOKENS)
    prompts = [BEAM_PROMPTS[0], BEAM_PROMPTS[3], BEAM_PROMPTS[5]]
    expected = smollm.beam_search(prompts, params)

    # Room for any one search's beams at full length (up to 9 blocks), not for three searches at once.
    block_bytes = kv_cache_bytes_per_block(smollm.engine.arch, 16, smollm.engine.dtype)
    tight = LLM(dtype="float32", kv_cache_memory_bytes=10 * block_bytes, max_model_len=64)
    outputs = tight.beam_search(prompts, params)

    assert tight.kv_cache_stats()["num_preemptions"] > 0
    for want, got in zip(expected, outputs, strict=True):
        assert [s.token_ids for s in got.sequences] == [s.token_ids for s in want.sequences]
    assert_all_blocks_free(tight)


def test_a_beam_search_that_cannot_fit_is_rejected_naming_the_blocks(smollm):
    tokenizer = smollm.get_tokenizer()
    too_wide = BeamSearchParams(beam_width=64, max_tokens=2000)
    with pytest.raises(ValueError, match=r"request 0: beam search of width 64 .* KV blocks"):
        smollm.beam_search([tokenizer.decode([100] * 20)], too_wide)
    assert_all_blocks_free(smollm)
