"""Decode attention given the step's own K/V (``StepKV``): it stores them at the step's slots and attends
to them from registers, with no K/V write before it, after rotating q and k and, for Qwen3, norming each
head first. Checked against the reference backend on a cache that a K/V write filled with the keys the
model's torch layers compute. On a GPU compiled; without CUDA through Triton's interpreter."""

from __future__ import annotations

import os
import random

import pytest
import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

pytest.importorskip("triton", reason="triton is not installed")

from test_triton_attention import (  # noqa: E402
    DEVICE,
    DTYPES,
    assert_close,
    assert_counters_zero,
    make_step,
    ragged_decodes,
    reference_attention,
)

from pagedllm.attention import ReferenceAttentionBackend  # noqa: E402
from pagedllm.attention.step_kv import QKPrep  # noqa: E402
from pagedllm.attention.triton import decode as triton_decode  # noqa: E402
from pagedllm.attention.triton import paged_decode_attention  # noqa: E402
from pagedllm.attention.triton.decode import DecodeLaunch, StepKV  # noqa: E402
from pagedllm.attention.triton.interpreter_compat import prepare_interpreter  # noqa: E402
from pagedllm.model.layers import RMSNorm, RotaryEmbedding  # noqa: E402

# (block_size, num_heads, num_kv_heads, head_dim)
if ON_GPU:
    SHAPES = [(16, 32, 8, 64), (16, 16, 8, 128), (16, 14, 2, 64), (32, 12, 2, 96)]
    MAX_LEN, NUM_SEQS = 2048, 24
else:
    SHAPES = [(8, 8, 2, 32), (16, 4, 1, 16), (4, 6, 2, 16)]
    MAX_LEN, NUM_SEQS = 70, 6
PREPS = ("stored", "rotated", "normed_and_rotated")
EPS = 1e-6


@pytest.fixture(autouse=True)
def _interpreter() -> None:
    prepare_interpreter()


def _norm(head_dim: int, dtype: torch.dtype) -> RMSNorm:
    norm = RMSNorm(head_dim, EPS).to(DEVICE, dtype)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.2 * torch.randn(head_dim))
    return norm


def _prepared(x: torch.Tensor, positions: torch.Tensor, rotary: RotaryEmbedding | None, norm: RMSNorm | None):
    """``x`` ([tokens, heads, head_dim]) as the model's torch layers prepare it: each head's norm, then
    rotary."""
    tokens, heads, head_dim = x.shape
    if norm is not None:
        x = norm(x)
    if rotary is not None:
        cos = rotary.cos_cache[positions].to(x.dtype).unsqueeze(1)
        sin = rotary.sin_cache[positions].to(x.dtype).unsqueeze(1)
        x = rotary._rotate(x.reshape(tokens, heads * head_dim), cos, sin).view(tokens, heads, head_dim)
    return x


def _run(prep: str, shape: tuple[int, int, int, int], dtype: torch.dtype, launches) -> None:
    block_size, num_heads, num_kv_heads, head_dim = shape
    seqs = ragged_decodes(NUM_SEQS, MAX_LEN, block_size)
    cache, _, metadata, (query, key, value) = make_step(
        seqs, block_size, (num_heads, num_kv_heads, head_dim), dtype
    )
    positions = (metadata.seq_lens - 1).to(torch.int64)  # a decode's token is its sequence's last
    rotary = RotaryEmbedding(head_dim, MAX_LEN, 10000.0).to(DEVICE) if prep != "stored" else None
    q_norm = _norm(head_dim, dtype) if prep == "normed_and_rotated" else None
    k_norm = _norm(head_dim, dtype) if prep == "normed_and_rotated" else None
    ref_q = _prepared(query, positions, rotary, q_norm)
    ref_k = _prepared(key, positions, rotary, k_norm)
    filled = cache.clone()
    ReferenceAttentionBackend().write_kv(ref_k, value, filled, metadata.slot_mapping)
    scale = head_dim**-0.5
    ref = reference_attention(ref_q, filled, metadata, scale)
    slots = metadata.slot_mapping.clone()
    padded = len(seqs) // 2
    slots[padded] = -1  # a padding row: attends, stores nothing
    expected = filled.clone()
    unstored = metadata.slot_mapping[padded].item()
    expected[:, unstored // block_size, unstored % block_size] = float("nan")
    prep = QKPrep(
        positions=positions if rotary else None,
        cos_cache=rotary.cos_cache if rotary else None,
        sin_cache=rotary.sin_cache if rotary else None,
        q_norm_weight=q_norm.weight if q_norm else None,
        k_norm_weight=k_norm.weight if k_norm else None,
        norm_eps=EPS,
    )
    step_kv = StepKV(key, value, slots, prep)
    for num_splits, launch in launches:
        stored = cache.clone()  # the step's slots NaN: only the kernel fills them
        out = torch.full_like(query, float("nan"))
        paged_decode_attention(out, query, stored, metadata.block_tables, metadata.seq_lens,
                               metadata.query_start_loc, metadata.max_seq_len, scale, num_splits=num_splits,
                               launch=launch, step_kv=step_kv)  # fmt: skip
        assert_close(out, ref.to(out.device), dtype)
        assert torch.equal(stored.isnan(), expected.isnan()), "a slot was stored that the step does not name"
        tolerance = 0 if prep == "stored" else (1e-5 if dtype == torch.float32 else 1e-2)
        torch.testing.assert_close(stored.nan_to_num(), expected.nan_to_num(), rtol=tolerance, atol=tolerance)
    assert_counters_zero(query.device)


# 16-token tiles: the step's token lands in the last split, in an earlier one (later ones empty), or alone.
SPLITS = ((None, DecodeLaunch()), (1, DecodeLaunch()), (3, DecodeLaunch(block_n=16, fused_merge=True)),
          (3, DecodeLaunch(block_n=16, fused_merge=False)))  # fmt: skip


@pytest.mark.parametrize("prep", PREPS)
@pytest.mark.parametrize("shape", SHAPES)
def test_decode_stores_the_step_kv_and_attends_as_after_a_kv_write(prep, shape):
    """One split, three (the last merging or a second pass), or as planned; the step's token held by
    the last split, by an earlier one when others are empty, or alone (a context of one token)."""
    _run(prep, shape, DTYPES[-1], SPLITS)


@pytest.mark.parametrize("prep", ("stored", "rotated"))
def test_decode_with_two_kv_heads_a_program_rotates_each_head_within_itself(prep):
    """Two KV heads side by side on one axis: a dim's rotary partner is in its own head."""
    shape = SHAPES[0]
    _run(
        prep,
        shape,
        DTYPES[-1],
        ((1, DecodeLaunch(kv_heads_per_program=2)), (3, DecodeLaunch(block_n=16, kv_heads_per_program=2))),
    )


def test_decode_refuses_a_step_kv_that_does_not_fit_and_says_why():
    block_size, num_heads, num_kv_heads, head_dim = SHAPES[0]
    seqs = ragged_decodes(NUM_SEQS, MAX_LEN, block_size)
    cache, _, metadata, (query, key, value) = make_step(
        seqs, block_size, (num_heads, num_kv_heads, head_dim), DTYPES[-1]
    )
    common = (query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
              metadata.max_seq_len, 1.0)  # fmt: skip
    out = torch.empty_like(query)
    weight = torch.ones(head_dim, device=DEVICE, dtype=query.dtype)
    cases = [
        (StepKV(key[:, :1], value, metadata.slot_mapping), {}, "must be"),
        (StepKV(key, value, metadata.slot_mapping[:1]), {}, "slot_mapping"),
        (StepKV(key, value, metadata.slot_mapping), {"decodes_only": True}, "decodes_only"),
        (StepKV(key, value, metadata.slot_mapping, QKPrep(positions=metadata.seq_lens.long())), {}, "cos"),
        (StepKV(key, value, metadata.slot_mapping, QKPrep(q_norm_weight=weight, k_norm_weight=weight)),
         {"launch": DecodeLaunch(kv_heads_per_program=2)}, "one KV head a program"),
    ]  # fmt: skip
    for step_kv, kwargs, reason in cases:
        with pytest.raises(ValueError, match=reason):
            paged_decode_attention(out, *common, step_kv=step_kv, **kwargs)


@pytest.fixture
def step_kv_launches(monkeypatch) -> list[tuple[bool, bool, bool]]:
    """(STEP_KV, STEP_ROPE, STEP_NORM) of every launch of the decode kernel while the test runs."""
    launched: list[tuple[bool, bool, bool]] = []
    kernel = triton_decode._decode_split_kernel

    class RecordingKernel:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launched.append((kwargs["STEP_KV"], kwargs["STEP_ROPE"], kwargs["STEP_NORM"]))
                return kernel[grid](*args, **kwargs)

            return launch

    monkeypatch.setattr(triton_decode, "_decode_split_kernel", RecordingKernel())
    return launched


@pytest.mark.skipif(ON_GPU, reason="test_triton_generation checks the engine on the GPU")
@pytest.mark.parametrize(
    ("architecture", "overrides", "normed"),
    [("LlamaForCausalLM", {}, False), ("Qwen3ForCausalLM", {"head_dim": 32}, True)],
)
def test_engine_decodes_through_the_step_kv_as_the_reference_backend(
    tmp_path, monkeypatch, step_kv_launches, architecture, overrides, normed
):
    """Greedy float32 generation through the engine with the Triton backend (the interpreter), whose
    decode steps hand the step's raw K/V to the decode kernel (rotary, and Qwen3's norm, there), equals
    the reference backend's, which stores K/V before attending; so does the Triton backend with it off."""
    from model_harness import build_hf_model, save_hf_model

    from pagedllm import LLM, SamplingParams
    from pagedllm.attention.triton import backend as triton_backend

    path = save_hf_model(build_hf_model(architecture, **overrides), tmp_path)
    rng = random.Random(5)
    prompts = [[rng.randrange(1, 250) for _ in range(n)] for n in (1, 16, 17, 33)]
    params = SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True)

    def generate(backend: str) -> list[list[int]]:
        llm = LLM(str(path), dtype="float32", device="cpu", attention_backend=backend, max_model_len=128,
                  block_size=16)  # fmt: skip
        return [o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)]

    expected = generate("reference")
    assert generate("triton") == expected
    assert (True, True, normed) in step_kv_launches, sorted(set(step_kv_launches))
    step_kv_launches.clear()
    monkeypatch.setattr(triton_backend, "STEP_KV_MODE", "off")
    assert generate("triton") == expected
    assert step_kv_launches and not any(step for step, _, _ in step_kv_launches)
