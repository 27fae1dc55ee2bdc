"""Whole models on the GPU: the Triton backend against the reference backend.

float32: greedy generation is token-identical through the engine (prefill, chunked prefill mixed with
decodes, block sizes). bfloat16: the logits of mixed steps are as close to the float32 model's as the
reference backend's are (within bfloat16's own error).
Needs CUDA; skipped elsewhere (the kernels themselves are checked on CPU by test_triton_attention).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
triton = pytest.importorskip("triton", reason="triton is not installed")

from pagedllm import LLM, SamplingParams  # noqa: E402
from pagedllm.attention import AttentionMetadata, ReferenceAttentionBackend, forward_context  # noqa: E402
from pagedllm.model.loader.model_loader import load_model  # noqa: E402

# Real head layouts (Qwen2.5-0.5B: 14 / 2 heads of 64; Llama-3.1-8B: 32 / 8 of 128; Qwen3-0.6B: 16 / 8
# of 128), few layers.
CONFIGS = {
    "qwen2-14x2x64": {
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 896,
        "intermediate_size": 1024,
        "num_hidden_layers": 4,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 4096,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
    },
    "qwen3-16x8x128": {  # per-head q/k norms (one launch with rotary on CUDA)
        "architectures": ["Qwen3ForCausalLM"],
        "hidden_size": 1024,
        "intermediate_size": 1024,
        "num_hidden_layers": 2,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 4096,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
    },
    "llama-32x8x128": {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 1024,
        "num_hidden_layers": 2,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 4096,
        "max_position_embeddings": 4096,
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    },
}
KV_BYTES = 1 << 28  # both engines live at once: do not let either size its cache from free memory


@pytest.fixture(params=sorted(CONFIGS))
def config_path(request, tmp_path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIGS[request.param]))
    return path


def _prompts(num: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    lengths = [1, 16, 17, 300, 1000] + [rng.randint(1, 400) for _ in range(num - 5)]
    return [[rng.randrange(1, 4000) for _ in range(n)] for n in lengths]


@pytest.mark.parametrize(
    "engine_kwargs",
    [{"block_size": 16}, {"block_size": 8, "max_num_batched_tokens": 256}, {"block_size": 64}],
)
def test_greedy_generation_is_identical_to_reference_in_float32(config_path, engine_kwargs):
    outputs = _greedy_float32_outputs(config_path, _prompts(12, seed=1), **engine_kwargs)
    assert outputs["triton"] == outputs["reference"]


def _greedy_float32_outputs(config_path: Path, prompts: list[list[int]], **engine_kwargs) -> dict[str, list]:
    """Backend name -> each prompt's 24 greedy tokens, from an engine in float32 with that backend."""
    params = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    outputs = {}
    for backend in ("reference", "triton"):
        llm = LLM(
            str(config_path),
            load_format="dummy",
            dtype="float32",
            attention_backend=backend,
            kv_cache_memory_bytes=KV_BYTES,
            **engine_kwargs,
        )
        assert llm.engine.runner.backend.name == backend
        outputs[backend] = [o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)]
        del llm
    return outputs


# The Llama-3.2-1B head layout (32 / 8 heads of 64), two small layers.
LLAMA_8X64 = {**CONFIGS["llama-32x8x128"], "hidden_size": 2048}


def test_greedy_generation_with_carried_block_ids_is_identical_to_reference_in_float32(tmp_path):
    """40 sequences of 8 KV heads of 64: their decode steps take one split and one KV head per program,
    where decode attention carries its block ids (``default_decode_launch``): 33 sequences and more of
    this layout fill the GPU's SMs twice without a split."""
    from pagedllm.attention.triton.decode import decode_variant, default_decode_launch

    num_prompts, max_model_len = 40, 2048
    device = torch.device("cuda")
    plan = decode_variant(num_prompts, 8, 64, max_model_len, device)
    assert plan.single and plan.kv_per_prog == 1, plan
    assert default_decode_launch(64, 16, plan.kv_per_prog, plan.single).carry_block_ids
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(LLAMA_8X64))
    prompts = _prompts(num_prompts, seed=4)
    outputs = _greedy_float32_outputs(config_path, prompts, max_model_len=max_model_len, block_size=16)
    assert outputs["triton"] == outputs["reference"]


def _metadata(
    seqs: list[tuple[int, int]], tables: list[list[int]], block_size: int, device: torch.device
) -> AttentionMetadata:
    """seqs: (tokens cached before the step, new tokens)."""
    slots, starts, lens = [], [0], []
    for (cached, new), table in zip(seqs, tables, strict=True):
        slots += [table[p // block_size] * block_size + p % block_size for p in range(cached, cached + new)]
        starts.append(starts[-1] + new)
        lens.append(cached + new)
    width = max(len(t) for t in tables)
    padded = [t + [0] * (width - len(t)) for t in tables]
    return AttentionMetadata(
        slot_mapping=torch.tensor(slots, dtype=torch.int64, device=device),
        block_tables=torch.tensor(padded, dtype=torch.int32, device=device),
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=device),
        seq_lens=torch.tensor(lens, dtype=torch.int32, device=device),
        max_query_len=max(n for _, n in seqs),
        max_seq_len=max(lens),
        query_start_loc_host=starts,
        seq_lens_host=lens,
    )


# (sequence, tokens cached, new tokens) per step: prefill A and B; decode A, C's first chunk, decode B;
# decode all three.
STEPS = [
    [(0, 0, 700), (1, 0, 45)],
    [(0, 700, 1), (2, 0, 100), (1, 45, 1)],
    [(0, 701, 1), (2, 100, 1), (1, 46, 1)],
]


def _step_logits(model, cfg, backend, dtype: torch.dtype) -> list[torch.Tensor]:
    """Logits [num_tokens, vocab] float32 of every step of STEPS, same tokens whatever the backend."""
    device = torch.device("cuda")
    block_size, num_blocks = 16, 256
    ids = list(range(num_blocks))
    random.Random(2).shuffle(ids)
    tables = [ids[:50], ids[50:100], ids[100:150]]  # sequences A, B, C
    shape = (2, num_blocks, block_size, cfg.num_key_value_heads, cfg.head_dim)
    caches = [torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.num_hidden_layers)]
    token_rng = random.Random(5)
    per_step = []
    for step in STEPS:
        seqs = [(cached, new) for _, cached, new in step]
        metadata = _metadata(seqs, [tables[i] for i, _, _ in step], block_size, device)
        num_tokens = metadata.query_start_loc_host[-1]
        input_ids = torch.tensor(
            [token_rng.randrange(cfg.vocab_size) for _ in range(num_tokens)], device=device
        )
        positions = torch.cat([torch.arange(c, c + n) for c, n in seqs]).to(device)
        with forward_context(metadata, caches, backend):
            hidden = model(input_ids, positions)
        per_step.append(model.compute_logits(hidden).float())
    return per_step


@torch.no_grad()
def test_bfloat16_logits_are_as_close_to_float32_as_the_reference_backend(config_path):
    """Both backends in bfloat16 against the float32 model (same weights): the Triton kernels may not add
    error beyond bfloat16's own (the reference attends in float32 and rounds once)."""
    from pagedllm.attention.triton import TritonAttentionBackend

    config = json.loads(config_path.read_text())
    model, cfg = load_model(config, dtype=torch.float32, device="cuda", load_format="dummy", seed=3)
    truth = _step_logits(model, cfg, ReferenceAttentionBackend(), torch.float32)
    model.to(torch.bfloat16)
    reference = _step_logits(model, cfg, ReferenceAttentionBackend(), torch.bfloat16)
    triton_logits = _step_logits(model, cfg, TritonAttentionBackend(), torch.bfloat16)
    for i, (true, ref, got) in enumerate(zip(truth, reference, triton_logits, strict=True)):
        assert not got.isnan().any()
        ref_error = ((ref - true).norm() / true.norm()).item()
        error = ((got - true).norm() / true.norm()).item()
        assert error <= 1.25 * ref_error + 1e-3, f"step {i}: triton {error:.2e}, reference {ref_error:.2e}"


@torch.no_grad()
def test_bfloat16_logits_with_fused_launches_are_as_close_to_float32(config_path, monkeypatch):
    """Fused launches, against the layers run one by one: at <= 128 rows the qkv projection with rotary
    (Llama, Qwen2.5), gate_up with SiLU-and-multiply (Qwen2.5) as single skinny launches, and the norms
    handed from o_proj and down to the next linear (``PendingNorm``); at any row count Qwen3's per-head
    q/k norms with rotary, and rotary storing the step's K/V. Against the float32 model run layer by layer
    (so that a fault common to the fused runs cannot hide in the truth), the logits may not be further off
    than without them."""
    from pagedllm.attention.triton import TritonAttentionBackend
    from pagedllm.model.layers import linear, qk_norm_rope, rotary
    from pagedllm.model.layers.pending_norm import PendingNorm
    from pagedllm.model.models import llama

    def run_unfused(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(linear.QKVParallelLinear, "fused_rotary", lambda self, *args: None)
        mp.setattr(linear.MergedColumnParallelLinear, "fused_silu_and_mul", lambda self, x: None)
        mp.setattr(linear.RowParallelLinear, "add_and_norm", lambda self, x, r, norm: norm(self(x), r))
        mp.setattr(llama, "side_by_side", lambda q, k: None)  # Qwen3: norm, norm, rotary
        # rotary stores no K/V: attention writes them
        mp.setattr(rotary.RotaryEmbedding, "rotate_and_store", lambda self, *args: False)

    config = json.loads(config_path.read_text())
    model, cfg = load_model(config, dtype=torch.float32, device="cuda", load_format="dummy", seed=3)
    with monkeypatch.context() as mp:
        run_unfused(mp)
        truth = _step_logits(model, cfg, TritonAttentionBackend(), torch.float32)
    model.to(torch.bfloat16)
    fused_calls = []
    # (owner, name, whether an output is a fused launch's: these return None where none serves)
    for owner, name, is_fused in ((linear.QKVParallelLinear, "fused_rotary", lambda out: out is not None),
                                  (linear.MergedColumnParallelLinear, "fused_silu_and_mul",
                                   lambda out: out is not None),
                                  (linear.RowParallelLinear, "add_and_norm",
                                   lambda out: isinstance(out[0], PendingNorm)),
                                  (qk_norm_rope, "qk_norm_rope_inplace", lambda out: True),
                                  (rotary.RotaryEmbedding, "rotate_and_store", lambda out: out)):  # fmt: skip
        original = getattr(owner, name)

        def counted(*args, _original=original, _name=name, _is_fused=is_fused, **kwargs):
            out = _original(*args, **kwargs)
            fused_calls.append((_name, _is_fused(out)))
            return out

        monkeypatch.setattr(owner, name, counted)
    fused = _step_logits(model, cfg, TritonAttentionBackend(), torch.bfloat16)
    assert any(fused for _, fused in fused_calls), "the steps took a fused launch"
    assert ("add_and_norm", True) in fused_calls, "a decode step handed its norms over"
    run_unfused(monkeypatch)
    unfused = _step_logits(model, cfg, TritonAttentionBackend(), torch.bfloat16)
    for i, (true, got, want) in enumerate(zip(truth, fused, unfused, strict=True)):
        unfused_error = ((want - true).norm() / true.norm()).item()
        error = ((got - true).norm() / true.norm()).item()
        message = f"step {i}: fused {error:.2e}, unfused {unfused_error:.2e}"
        assert error <= 1.25 * unfused_error + 1e-3, message
