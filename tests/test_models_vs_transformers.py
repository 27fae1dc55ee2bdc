"""Our models against Hugging Face transformers on tiny random checkpoints, in float32 on the CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from model_harness import build_hf_model, greedy_generate, prompt_logits, save_hf_model

from pagedllm.model.config import ModelArchConfig
from pagedllm.model.loader import load_model

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # Small, so the tiny head_dim has frequencies in all three bands (kept, interpolated, scaled).
    "original_max_position_embeddings": 16,
}

# name -> (architecture, HF config overrides)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-gqa": ("LlamaForCausalLM", {}),
    "llama-mha-tied": ("LlamaForCausalLM", {"num_key_value_heads": 4, "tie_word_embeddings": True}),
    "llama3-rope-scaling": ("LlamaForCausalLM", {"rope_parameters": LLAMA3_ROPE}),
    "llama-linear-rope": (
        "LlamaForCausalLM",
        {"rope_parameters": {"rope_type": "linear", "rope_theta": 500.0, "factor": 2.0}},
    ),
    "llama-head-dim-32": ("LlamaForCausalLM", {"head_dim": 32, "num_key_value_heads": 1}),
    "llama-attention-bias": ("LlamaForCausalLM", {"attention_bias": True}),
    "mistral": ("MistralForCausalLM", {"head_dim": 8, "sliding_window": None}),
    "qwen2-tied": ("Qwen2ForCausalLM", {"tie_word_embeddings": True}),
    "qwen2-untied": ("Qwen2ForCausalLM", {"num_key_value_heads": 1}),
    "qwen3-tied": ("Qwen3ForCausalLM", {"tie_word_embeddings": True, "head_dim": 32}),
    "qwen3-attention-bias": ("Qwen3ForCausalLM", {"attention_bias": True}),
}


@dataclass
class Checkpoint:
    hf_model: transformers.PreTrainedModel
    path: Path


@pytest.fixture(scope="module", params=list(CASES))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    architecture, overrides = CASES[request.param]
    hf_model = build_hf_model(architecture, **overrides)
    path = save_hf_model(hf_model, tmp_path_factory.mktemp(request.param))
    return Checkpoint(hf_model, path)


def _prompt(length: int, seed: int = 1) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (length,), generator=generator).tolist()


def _hf_logits(hf_model: transformers.PreTrainedModel, prompt: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return hf_model(torch.tensor([prompt])).logits[0].float()  # [len(prompt), vocab]


def _load(path: Path) -> tuple[torch.nn.Module, ModelArchConfig]:
    return load_model(path, dtype=torch.float32, device=torch.device("cpu"))


def test_prefill_logits_match_transformers_in_fp32(checkpoint: Checkpoint) -> None:
    model, cfg = _load(checkpoint.path)
    prompt = _prompt(27)
    ours = prompt_logits(model, cfg, prompt)
    theirs = _hf_logits(checkpoint.hf_model, prompt)
    assert ours.dtype == torch.float32
    assert (ours - theirs).abs().max().item() < 1e-4


def test_greedy_decode_through_paged_cache_matches_transformers_generate(checkpoint: Checkpoint) -> None:
    model, cfg = _load(checkpoint.path)
    prompt = _prompt(9, seed=2)
    num_new = 20
    with torch.no_grad():
        hf_out = checkpoint.hf_model.generate(
            torch.tensor([prompt]), max_new_tokens=num_new, do_sample=False, attention_mask=None
        )
    theirs = hf_out[0, len(prompt) :].tolist()
    assert len(theirs) == num_new
    # Blocks deliberately out of order: the block table, not contiguity, must carry the sequence.
    ours = greedy_generate(model, cfg, prompt, num_new, block_size=4, block_table=[5, 2, 7, 0, 3, 1, 6, 4])
    assert ours == theirs


def test_chunked_prefill_gives_the_same_logits_as_one_prefill(checkpoint: Checkpoint) -> None:
    model, cfg = _load(checkpoint.path)
    prompt = _prompt(23, seed=3)
    whole = prompt_logits(model, cfg, prompt)
    chunked = prompt_logits(model, cfg, prompt, chunk_sizes=[5, 1, 10, 7])
    assert (whole - chunked).abs().max().item() < 1e-5


def test_bfloat16_model_keeps_its_dtype_and_tracks_fp32_logits(tmp_path: Path) -> None:
    hf_model = build_hf_model("Qwen3ForCausalLM")
    save_hf_model(hf_model, tmp_path)
    model, cfg = load_model(tmp_path, dtype=torch.bfloat16, device=torch.device("cpu"))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    prompt = _prompt(16, seed=4)
    ours = prompt_logits(model, cfg, prompt)
    theirs = _hf_logits(hf_model, prompt)
    assert ours.dtype == torch.float32
    # bf16 keeps ~3 significant digits; the logits must still follow fp32 closely.
    assert torch.corrcoef(torch.stack([ours.flatten(), theirs.flatten()]))[0, 1] > 0.99
