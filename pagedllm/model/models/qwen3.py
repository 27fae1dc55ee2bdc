"""Qwen3: the Llama decoder with per-head RMSNorm on q and k before RoPE, and no q/k/v bias by default."""

from __future__ import annotations

from pagedllm.model.config import ModelArchConfig
from pagedllm.model.models.llama import DecoderOptions, LlamaForCausalLM


class Qwen3ForCausalLM(LlamaForCausalLM):
    @classmethod
    def decoder_options(cls, cfg: ModelArchConfig) -> DecoderOptions:
        return DecoderOptions(qkv_bias=cfg.attention_bias, o_proj_bias=cfg.attention_bias, qk_norm=True)
