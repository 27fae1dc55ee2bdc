"""Runs pagedllm models one sequence at a time through a paged KV cache, and builds tiny HF checkpoints.

The model tests compare against Hugging Face transformers, so this file knows both sides: how to save a
tiny random HF model, and how to drive one of ours through ``forward_context`` with the reference
attention backend (prefill in chunks, then one-token decode steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn

from pagedllm.attention import AttentionMetadata, ReferenceAttentionBackend, forward_context
from pagedllm.model.config import ModelArchConfig

# Small enough that the whole suite runs in seconds, big enough for GQA and several blocks per sequence.
TINY_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    # No eos: HF generate then always produces max_new_tokens, like our greedy loop.
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": 0,
}

# The GPU tests' engine model (dummy weights): a Llama of 3 layers, 8 query / 2 KV heads of 64 dims.
GPU_LLAMA_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 512,
    "intermediate_size": 1024,
    "num_hidden_layers": 3,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 4096,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}

_HF_CONFIG_CLASSES = {
    "LlamaForCausalLM": transformers.LlamaConfig,
    "MistralForCausalLM": transformers.MistralConfig,
    "Qwen2ForCausalLM": transformers.Qwen2Config,
    "Qwen3ForCausalLM": transformers.Qwen3Config,
}


def build_hf_model(architecture: str, seed: int = 0, **overrides: Any) -> transformers.PreTrainedModel:
    """A tiny random HF model in float32, eval mode.

    NOTE: weights are redrawn larger than HF's 0.02 init and norms are perturbed from 1: with tiny
    weights attention is almost uniform and a wrong rotary or norm weight would barely move the logits.
    """
    config = _HF_CONFIG_CLASSES[architecture](**{**TINY_CONFIG, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(config).float().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1 and "norm" in name:
                param.copy_(1.0 + 0.1 * torch.randn_like(param))
            elif param.dim() == 1:  # biases
                param.normal_(0.0, 0.1)
            else:
                param.normal_(0.0, 0.2)
    return model


def save_hf_model(model: transformers.PreTrainedModel, path: Path, max_shard_size: str | None = None) -> Path:
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    model.save_pretrained(path, **kwargs)
    return path


def allocate_kv_caches(
    model: nn.Module, cfg: ModelArchConfig, num_blocks: int, block_size: int
) -> list[torch.Tensor]:
    """Zeroed ``[2, num_blocks, block_size, num_kv_heads, head_dim]`` caches, one per layer, by the model."""
    param = next(model.parameters())
    shape = (2, num_blocks, block_size, cfg.num_key_value_heads, cfg.head_dim)
    return [torch.zeros(shape, dtype=param.dtype, device=param.device) for _ in range(cfg.num_hidden_layers)]


def single_sequence_metadata(
    num_cached: int,
    num_new: int,
    block_table: list[int],
    block_size: int,
    device: torch.device | None = None,
) -> AttentionMetadata:
    """Metadata for one sequence whose tokens ``num_cached .. num_cached + num_new`` are new this step."""
    seq_len = num_cached + num_new
    if -(-seq_len // block_size) > len(block_table):
        raise ValueError(f"seq_len={seq_len} needs more than {len(block_table)} blocks of {block_size}")
    slots = [
        block_table[pos // block_size] * block_size + pos % block_size for pos in range(num_cached, seq_len)
    ]
    return AttentionMetadata(
        slot_mapping=torch.tensor(slots, dtype=torch.int64, device=device),
        block_tables=torch.tensor([block_table], dtype=torch.int32, device=device),
        query_start_loc=torch.tensor([0, num_new], dtype=torch.int32, device=device),
        seq_lens=torch.tensor([seq_len], dtype=torch.int32, device=device),
        max_query_len=num_new,
        max_seq_len=seq_len,
        query_start_loc_host=[0, num_new],
        seq_lens_host=[seq_len],
    )


class PagedSequenceRunner:
    """Feeds one sequence to a model step by step; K/V persist in a paged cache between steps."""

    def __init__(
        self,
        model: nn.Module,
        cfg: ModelArchConfig,
        max_len: int,
        block_size: int = 4,
        block_table: list[int] | None = None,
    ) -> None:
        num_blocks = -(-max_len // block_size)
        self.block_table = list(range(num_blocks)) if block_table is None else block_table
        self.model = model
        self.block_size = block_size
        self.kv_caches = allocate_kv_caches(model, cfg, max(self.block_table) + 1, block_size)
        self.device = self.kv_caches[0].device
        self.backend = ReferenceAttentionBackend()
        self.token_ids: list[int] = []

    @torch.no_grad()
    def step(self, new_token_ids: list[int]) -> torch.Tensor:
        """Runs the new tokens; returns their logits ``[len(new_token_ids), vocab]`` float32."""
        num_cached = len(self.token_ids)
        self.token_ids.extend(new_token_ids)
        input_ids = torch.tensor(new_token_ids, dtype=torch.int64, device=self.device)  # [num_new]
        positions = torch.arange(num_cached, len(self.token_ids), device=self.device)  # [num_new] int64
        metadata = single_sequence_metadata(
            num_cached, len(new_token_ids), self.block_table, self.block_size, self.device
        )
        with forward_context(metadata, self.kv_caches, self.backend):
            hidden = self.model(input_ids, positions)  # [num_new, hidden_size]
        return self.model.compute_logits(hidden).float()  # type: ignore[operator, no-any-return]


def prompt_logits(
    model: nn.Module, cfg: ModelArchConfig, prompt: list[int], chunk_sizes: list[int] | None = None
) -> torch.Tensor:
    """Logits ``[len(prompt), vocab]`` of a prompt prefilled in one step, or in chunks of ``chunk_sizes``."""
    runner = PagedSequenceRunner(model, cfg, max_len=len(prompt))
    chunks = chunk_sizes or [len(prompt)]
    if sum(chunks) != len(prompt):
        raise ValueError(f"chunk_sizes={chunks} do not add up to the prompt length {len(prompt)}")
    outputs, start = [], 0
    for size in chunks:
        outputs.append(runner.step(prompt[start : start + size]))
        start += size
    return torch.cat(outputs)


def greedy_generate(
    model: nn.Module,
    cfg: ModelArchConfig,
    prompt: list[int],
    max_new_tokens: int,
    block_size: int = 4,
    block_table: list[int] | None = None,
) -> list[int]:
    """Prefill, then one-token decode steps, taking the argmax each time; returns the new token ids."""
    runner = PagedSequenceRunner(model, cfg, len(prompt) + max_new_tokens, block_size, block_table)
    next_id = int(runner.step(prompt)[-1].argmax())
    generated = [next_id]
    while len(generated) < max_new_tokens:
        next_id = int(runner.step([next_id])[-1].argmax())
        generated.append(next_id)
    return generated
