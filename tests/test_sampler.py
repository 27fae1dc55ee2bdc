from __future__ import annotations

import math

import pytest
import torch

from pagedllm.sampling_params import SamplingParams
from pagedllm.worker.sampler import Sampler, apply_penalties, apply_top_k_top_p
from pagedllm.worker.sampling_batch import SamplingBatch

CPU = torch.device("cpu")


def make_batch(
    params: list[SamplingParams],
    vocab_size: int,
    prompts: list[list[int]] | None = None,
    outputs: list[list[int]] | None = None,
    generators: list[torch.Generator | None] | None = None,
    eos_token_id: int | None = None,
) -> SamplingBatch:
    num_reqs = len(params)
    return SamplingBatch.build(
        params=params,
        prompt_token_ids=prompts if prompts is not None else [[0]] * num_reqs,
        output_token_ids=outputs if outputs is not None else [[]] * num_reqs,
        generators=generators if generators is not None else [None] * num_reqs,
        eos_token_ids=() if eos_token_id is None else (eos_token_id,),
        vocab_size=vocab_size,
        device=CPU,
    )


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sample_counts(
    logits_row: torch.Tensor,  # [vocab_size]
    params: SamplingParams,
    num_draws: int = 20_000,
    seed: int = 0,
) -> torch.Tensor:  # [vocab_size] int64
    """Draws num_draws tokens at once: one batch row per draw, all with the same logits."""
    vocab_size = logits_row.shape[0]
    batch = make_batch([params] * num_draws, vocab_size)
    logits = logits_row.expand(num_draws, vocab_size).contiguous()
    tokens = Sampler()(logits, batch, seeded(seed)).sampled_token_ids
    return torch.bincount(torch.tensor(tokens), minlength=vocab_size)


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs.double() * counts.sum()
    keep = expected > 0
    return float((((counts.double() - expected) ** 2)[keep] / expected[keep]).sum())


def test_greedy_picks_argmax_of_logits() -> None:
    logits = torch.randn(8, 50, generator=seeded(1))
    batch = make_batch([SamplingParams(temperature=0.0)] * 8, 50)
    out = Sampler()(logits, batch, seeded(0))
    assert out.sampled_token_ids == logits.argmax(dim=-1).tolist()
    assert out.logprobs == [None] * 8


def test_greedy_rows_in_a_mixed_batch_still_take_argmax() -> None:
    logits = torch.randn(6, 40, generator=seeded(2))
    params = [SamplingParams(temperature=0.0 if i % 2 else 1.5) for i in range(6)]
    out = Sampler()(logits, make_batch(params, 40), seeded(0))
    argmax = logits.argmax(dim=-1).tolist()
    assert [out.sampled_token_ids[i] for i in (1, 3, 5)] == [argmax[i] for i in (1, 3, 5)]


def test_top_k_one_equals_greedy() -> None:
    logits = torch.randn(64, 100, generator=seeded(3))
    batch = make_batch([SamplingParams(temperature=2.0, top_k=1)] * 64, 100)
    assert Sampler()(logits, batch, seeded(0)).sampled_token_ids == logits.argmax(dim=-1).tolist()


def test_tiny_top_p_equals_greedy() -> None:
    logits = torch.randn(64, 100, generator=seeded(4))
    batch = make_batch([SamplingParams(temperature=1.0, top_p=1e-6)] * 64, 100)
    assert Sampler()(logits, batch, seeded(0)).sampled_token_ids == logits.argmax(dim=-1).tolist()


def test_tiny_temperature_equals_greedy_without_overflow() -> None:
    logits = torch.randn(64, 100, generator=seeded(5)) * 50
    batch = make_batch([SamplingParams(temperature=1e-6)] * 64, 100)
    assert Sampler()(logits, batch, seeded(0)).sampled_token_ids == logits.argmax(dim=-1).tolist()


@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_a_value_below_float32s_range_still_samples_greedily(field) -> None:
    # Found in review: 1e-50 passed validation as a Python float and became 0 in float32: a temperature
    # of 0 then sampled at temperature 1, a top_p of 0 dropped every token (token 0 every time).
    logits = torch.randn(64, 100, generator=seeded(6))
    params = SamplingParams(**{"temperature": 1.0, field: 1e-50})
    batch = make_batch([params] * 64, 100, generators=[seeded(i) for i in range(64)])
    assert Sampler()(logits, batch, None).sampled_token_ids == logits.argmax(dim=-1).tolist()


def test_a_repetition_penalty_below_float32s_range_boosts_seen_tokens_without_nan() -> None:
    logits = torch.tensor([[0.0, 5.0, 50.0, -1.0]]).expand(32, 4).contiguous()
    params = [SamplingParams(temperature=1.0, repetition_penalty=1e-300)] * 32
    batch = make_batch(params, 4, prompts=[[1]] * 32, generators=[seeded(i) for i in range(32)])
    assert batch.penalties is not None
    assert not apply_penalties(logits, batch.penalties).isnan().any()
    assert Sampler()(logits, batch, None).sampled_token_ids == [1] * 32  # 5 / tiny (inf) beats 50


def test_temperature_draws_follow_softmax_of_scaled_logits() -> None:
    logits = torch.tensor([1.0, 0.2, -0.5, 2.0, 0.0, -1.5])
    temperature = 0.7
    counts = sample_counts(logits, SamplingParams(temperature=temperature), num_draws=40_000)
    # 5 degrees of freedom: P(chi2 > 30) ~ 1.5e-5, so a correct sampler essentially never fails...
    assert chi_square(counts, torch.softmax(logits / temperature, dim=-1)) < 30.0
    # ...and the test has power: the untempered distribution is rejected by a wide margin.
    assert chi_square(counts, torch.softmax(logits, dim=-1)) > 300.0


def test_min_p_drops_tokens_below_fraction_of_max_prob() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    # Threshold 0.35 * 0.5 = 0.175: tokens 0 and 1 stay, in proportion 0.5 : 0.3.
    counts = sample_counts(probs.log(), SamplingParams(min_p=0.35))
    assert counts[2:].sum() == 0
    assert chi_square(counts, torch.tensor([0.625, 0.375, 0.0, 0.0])) < 25.0


def test_top_k_keeps_only_k_most_likely_in_proportion() -> None:
    probs = torch.tensor([0.1, 0.4, 0.05, 0.3, 0.15])
    counts = sample_counts(probs.log(), SamplingParams(top_k=3))
    assert counts[0] == 0 and counts[2] == 0
    assert chi_square(counts, torch.tensor([0.0, 0.4, 0.0, 0.3, 0.15]) / 0.85) < 25.0


def test_top_p_keeps_smallest_prefix_reaching_p() -> None:
    probs = torch.tensor([0.2, 0.4, 0.1, 0.3])
    # Sorted 0.4, 0.3, 0.2, 0.1: mass before each is 0, 0.4, 0.7, 0.9; top_p=0.65 keeps tokens 1 and 3.
    counts = sample_counts(probs.log(), SamplingParams(top_p=0.65))
    assert counts[0] == 0 and counts[2] == 0
    assert counts[1] > 0 and counts[3] > 0


def test_top_p_applies_to_the_top_k_survivors_renormalized() -> None:
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])
    # Alone, top_p=0.75 keeps 3 tokens (0.7 < 0.75). After top_k=3 the survivors are 4/9, 3/9, 2/9 and the
    # mass before token 2 is 7/9 >= 0.75, so only 2 tokens stay.
    alone = sample_counts(probs.log(), SamplingParams(top_p=0.75))
    combined = sample_counts(probs.log(), SamplingParams(top_k=3, top_p=0.75))
    assert alone[2] > 0 and alone[3] == 0
    assert combined[2] == 0 and combined[3] == 0


def reference_kept_tokens(
    logits: torch.Tensor, temperature: float, min_p: float, k: int, p: float
) -> set[int]:
    """Per-row, float64, plain Python: the tokens min_p -> top_k -> top_p leave."""
    probs = torch.softmax(logits.double() / temperature, dim=-1).tolist()
    kept = [t for t, prob in enumerate(probs) if prob >= min_p * max(probs)]
    kept.sort(key=lambda t: -probs[t])
    if k > 0:
        kept = kept[:k]
    total = sum(probs[t] for t in kept)
    result, mass = [], 0.0
    for t in kept:
        if mass / total >= p and p < 1.0:
            break
        result.append(t)
        mass += probs[t]
    return set(result)


def test_filters_keep_the_same_tokens_as_a_per_row_reference() -> None:
    gen = seeded(6)
    num_reqs, vocab_size = 48, 30
    logits = torch.randn(num_reqs, vocab_size, generator=gen) * 2
    params = [
        SamplingParams(
            temperature=0.5 + float(torch.rand(1, generator=gen)),
            min_p=[0.0, 0.05, 0.2][i % 3],
            top_k=[0, 1, 5, 12][i % 4],
            top_p=[1.0, 0.3, 0.8, 0.95][(i // 4) % 4],
        )
        for i in range(num_reqs)
    ]
    batch = make_batch(params, vocab_size)
    scaled = logits / batch.temperature[:, None]
    probs = torch.softmax(scaled, dim=-1)
    probs = probs.masked_fill(probs < batch.min_p[:, None] * probs.amax(dim=-1, keepdim=True), 0.0)
    filtered = apply_top_k_top_p(probs, batch.top_k, batch.top_p, needs_top_p=True)
    for row, sp in enumerate(params):
        kept = set(filtered[row].nonzero().flatten().tolist())
        assert kept == reference_kept_tokens(logits[row], sp.temperature, sp.min_p, sp.top_k, sp.top_p), row


def run_steps(
    logits_per_step: list[torch.Tensor],  # each [num_reqs, vocab_size]
    params: list[SamplingParams],
    generators: list[torch.Generator | None],
    default_seed: int,
) -> list[list[int]]:  # [num_steps][num_reqs]
    sampler, default = Sampler(), seeded(default_seed)
    vocab_size = logits_per_step[0].shape[1]
    return [
        sampler(logits, make_batch(params, vocab_size, generators=generators), default).sampled_token_ids
        for logits in logits_per_step
    ]


def test_seeded_row_gives_same_tokens_alone_and_at_another_batch_position() -> None:
    gen = seeded(7)
    vocab_size, num_steps = 64, 12
    own = [torch.randn(vocab_size, generator=gen) for _ in range(num_steps)]
    params = SamplingParams(temperature=1.3, top_p=0.95, seed=123)
    alone = run_steps([x[None] for x in own], [params], [seeded(123)], default_seed=0)

    others = [SamplingParams(temperature=1.0), SamplingParams(temperature=0.8, seed=9), SamplingParams()]
    batched_logits = [
        torch.cat([torch.randn(2, vocab_size, generator=gen), x[None], torch.randn(1, vocab_size)])
        for x in own
    ]
    batched = run_steps(
        batched_logits,
        [others[0], others[1], params, others[2]],
        [None, seeded(9), seeded(123), None],
        default_seed=99,
    )
    assert [step[0] for step in alone] == [step[2] for step in batched]
    assert len({step[0] for step in alone}) > 1  # really sampled, not a constant


def test_unseeded_rows_are_reproducible_from_the_default_generator() -> None:
    logits = [torch.randn(4, 32, generator=seeded(s)) for s in range(8)]
    params = [SamplingParams(temperature=1.0)] * 4
    first = run_steps(logits, params, [None] * 4, default_seed=5)
    assert first == run_steps(logits, params, [None] * 4, default_seed=5)
    assert first != run_steps(logits, params, [None] * 4, default_seed=6)


def test_penalties_change_exactly_the_expected_logits() -> None:
    logits = torch.tensor(
        [
            [2.0, -1.0, 0.5, -0.5, 3.0, 1.0],
            [2.0, -1.0, 0.5, -0.5, 3.0, 1.0],
        ]
    )
    params = [
        SamplingParams(repetition_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25),
        SamplingParams(),  # same history, no penalties: untouched
    ]
    batch = make_batch(params, 6, prompts=[[0, 1], [0, 1]], outputs=[[2, 2, 3], [2, 2, 3]])
    assert batch.penalties is not None
    penalized = apply_penalties(logits, batch.penalties)
    # Token 0: prompt, positive -> 2 / 2. Token 1: prompt, negative -> -1 * 2. Prompt tokens get no
    # presence/frequency penalty. Token 2: output twice -> 0.5 / 2 - 0.25 * 2 - 0.5. Token 3: output once
    # -> -0.5 * 2 - 0.25 - 0.5. Tokens 4 and 5: unseen.
    expected = torch.tensor([1.0, -2.0, -0.75, -1.75, 3.0, 1.0])
    torch.testing.assert_close(penalized[0], expected)
    torch.testing.assert_close(penalized[1], logits[1])


def test_repetition_penalty_steers_greedy_away_from_repeated_token() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.5, 0.0]])
    plain = make_batch([SamplingParams(temperature=0.0)], 4, outputs=[[1]])
    penalized = make_batch([SamplingParams(temperature=0.0, repetition_penalty=1.5)], 4, outputs=[[1]])
    assert Sampler()(logits, plain, None).sampled_token_ids == [1]
    assert Sampler()(logits, penalized, None).sampled_token_ids == [2]


def test_batch_without_penalties_skips_penalty_inputs() -> None:
    batch = make_batch([SamplingParams(), SamplingParams(temperature=0.0)], 10, outputs=[[1, 2], [3]])
    assert batch.penalties is None


def test_min_tokens_blocks_eos_and_stop_token_ids_until_reached() -> None:
    eos, stop_id, vocab_size = 7, 3, 8
    logits = torch.zeros(3, vocab_size)
    logits[:, eos] = 10.0
    logits[:, stop_id] = 9.0
    logits[:, 5] = 8.0
    params = SamplingParams(temperature=0.0, min_tokens=2, stop_token_ids=[stop_id])
    ignore_eos = SamplingParams(temperature=0.0, min_tokens=2, stop_token_ids=[stop_id], ignore_eos=True)
    batch = make_batch([params, params, ignore_eos], vocab_size, outputs=[[1], [1, 2], [1]], eos_token_id=eos)
    assert batch.blocked_token_ids == [[stop_id, eos], [], [stop_id]]
    # Row 0: below min_tokens -> EOS and the stop id are blocked. Row 1: reached. Row 2: EOS is an
    # ordinary token under ignore_eos, only the stop id is blocked.
    assert Sampler()(logits, batch, None).sampled_token_ids == [5, eos, eos]


def test_min_tokens_blocks_every_eos_id_of_a_model_with_several() -> None:
    logits = torch.zeros(1, 8)
    logits[0, 6] = 10.0  # the model's second EOS id: the likeliest token
    logits[0, 2] = 9.0  # its first
    logits[0, 4] = 8.0
    batch = SamplingBatch.build(
        params=[SamplingParams(temperature=0.0, min_tokens=3)],
        prompt_token_ids=[[0]],
        output_token_ids=[[1]],
        generators=[None],
        eos_token_ids=(2, 6),
        vocab_size=8,
        device=CPU,
    )
    assert batch.blocked_token_ids == [[2, 6]]
    assert Sampler()(logits, batch, None).sampled_token_ids == [4]


def test_blocked_tokens_are_never_sampled() -> None:
    eos, vocab_size, num_draws = 0, 5, 5000
    logits = torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0]).expand(num_draws, vocab_size).contiguous()
    params = [SamplingParams(temperature=1.0, min_tokens=4)] * num_draws
    batch = make_batch(params, vocab_size, eos_token_id=eos)
    tokens = Sampler()(logits, batch, seeded(0)).sampled_token_ids
    assert eos not in tokens
    assert set(tokens) == {1, 2, 3, 4}


def test_sampler_leaves_the_callers_logits_untouched() -> None:
    logits = torch.randn(2, 10, generator=seeded(8))
    before = logits.clone()
    params = [SamplingParams(min_tokens=3, repetition_penalty=1.3, top_p=0.5)] * 2
    Sampler()(logits, make_batch(params, 10, outputs=[[1], [2]], eos_token_id=4), seeded(0))
    assert torch.equal(logits, before)


def test_logprobs_list_sampled_token_first_then_top_k_of_raw_distribution() -> None:
    vocab_size = 12
    logits = torch.randn(3, vocab_size, generator=seeded(9))
    params = [
        # Processing (temperature, penalty, top_k) must not leak into the reported logprobs.
        SamplingParams(temperature=0.5, top_k=4, repetition_penalty=1.7, logprobs=5, seed=1),
        SamplingParams(temperature=0.0, logprobs=0),
        SamplingParams(temperature=1.0),
    ]
    batch = make_batch(params, vocab_size, outputs=[[0, 1], [], []], generators=[seeded(1), None, None])
    out = Sampler()(logits, batch, seeded(0))
    raw = torch.log_softmax(logits, dim=-1)

    entry = out.logprobs[0]
    assert entry is not None and len(entry) == 6
    sampled = out.sampled_token_ids[0]
    token, logprob, rank = entry[0]
    assert token == sampled
    assert logprob == pytest.approx(raw[0, sampled].item(), abs=1e-6)
    assert rank == 1 + int((raw[0] > raw[0, sampled]).sum())
    top = raw[0].topk(5)
    assert [t for t, _, _ in entry[1:]] == top.indices.tolist()
    assert [r for _, _, r in entry[1:]] == [1, 2, 3, 4, 5]
    values = [v for _, v, _ in entry[1:]]
    assert values == sorted(values, reverse=True)
    assert values == pytest.approx(top.values.tolist(), abs=1e-6)

    greedy = out.logprobs[1]
    assert greedy is not None and len(greedy) == 1
    assert greedy[0][0] == int(logits[1].argmax()) and greedy[0][2] == 1
    assert math.isclose(greedy[0][1], raw[1].max().item(), abs_tol=1e-6)
    assert out.logprobs[2] is None


def test_build_turns_oversized_top_k_off_and_drops_greedy_generators() -> None:
    params = [SamplingParams(top_k=1000), SamplingParams(temperature=0.0, seed=4)]
    batch = make_batch(params, 50, generators=[None, seeded(4)])
    assert batch.top_k.tolist() == [50, 50]
    assert batch.generators == [None, None]
    assert not batch.needs_top_k


def test_build_rejects_mismatched_row_counts() -> None:
    with pytest.raises(ValueError, match="generators"):
        SamplingBatch.build(
            params=[SamplingParams()],
            prompt_token_ids=[[1]],
            output_token_ids=[[]],
            generators=[],
            eos_token_ids=(),
            vocab_size=10,
            device=CPU,
        )


def test_empty_batch_samples_nothing() -> None:
    out = Sampler()(torch.empty(0, 10), make_batch([], 10), seeded(0))
    assert out.sampled_token_ids == [] and out.logprobs == []


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_logits_sample_as_their_float32_upcast(dtype) -> None:
    """Logits arrive in the model's dtype: a plain greedy batch takes their argmax as they are, the
    other paths upcast; either way every token and logprob equals the float32 logits' (ties included:
    the rows repeat their maximum, and the lowest index wins in both)."""
    vocab_size = 300
    logits = (torch.randn(6, vocab_size, generator=seeded(11)) * 4).to(dtype)
    logits[:, 17] = logits[:, 200] = logits.amax(dim=-1) + 1  # a tie for the maximum in every row
    upcast = logits.float()
    cases = [
        [SamplingParams(temperature=0.0)] * 6,  # the native-dtype path
        [SamplingParams(temperature=0.0, logprobs=3)] * 6,
        [SamplingParams(temperature=0.0, min_tokens=2)] * 6,  # blocked EOS: the float32 path
        [SamplingParams(temperature=0.0, repetition_penalty=1.5)] * 6,
        [SamplingParams(temperature=0.8, seed=3)] * 6,
    ]

    def batch(params: list[SamplingParams]) -> SamplingBatch:
        generators = [seeded(3) if p.seed is not None else None for p in params]
        return make_batch(params, vocab_size, eos_token_id=17, generators=generators)

    for params in cases:
        native = Sampler()(logits, batch(params), None)
        wide = Sampler()(upcast, batch(params), None)
        assert native.sampled_token_ids == wide.sampled_token_ids, params[0]
        assert native.logprobs == wide.logprobs, params[0]
    assert Sampler()(logits, make_batch(cases[0], vocab_size), None).sampled_token_ids == [17] * 6
