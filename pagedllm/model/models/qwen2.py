"""Qwen2 / Qwen2.5: the Llama decoder with a bias on q/k/v (never on o_proj)."""

from __future__ import annotations

from pagedllm.model.config import ModelArchConfig
from pagedllm.model.models.llama import DecoderOptions, LlamaForCausalLM


class Qwen2ForCausalLM(LlamaForCausalLM):
    @classmethod
    def decoder_options(cls, cfg: ModelArchConfig) -> DecoderOptions:
        # NOTE: the architecture implies the q/k/v bias; Qwen2 configs carry no attention_bias key.
        return DecoderOptions(qkv_bias=True, o_proj_bias=False, qk_norm=False)
