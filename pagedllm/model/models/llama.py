"""Llama (and Mistral): the decoder the Qwen models reuse with a few switches (``DecoderOptions``).

Inputs are flat: every scheduled sequence's new tokens concatenated, no batch dimension. Attention
reads the step's metadata and KV cache from the forward context, so the model only sees token ids and
their positions.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import ClassVar

import torch
from torch import nn

from pagedllm.attention import Attention
from pagedllm.model.config import ModelArchConfig
from pagedllm.model.layers import (
    MergedColumnParallelLinear,
    ParallelLMHead,
    QKVParallelLinear,
    RMSNorm,
    RotaryEmbedding,
    RowParallelLinear,
    SiluAndMul,
    VocabParallelEmbedding,
    fused_ops,
)
from pagedllm.model.layers.pending_norm import PendingNorm
from pagedllm.model.layers.rotary import side_by_side
from pagedllm.model.models.weights import PackedModules, load_checkpoint_weights


@dataclass(frozen=True, slots=True)
class DecoderOptions:
    """Where the architectures built on this decoder differ."""

    qkv_bias: bool
    o_proj_bias: bool
    qk_norm: bool  # Qwen3: RMSNorm over each head's q and k before RoPE


class LlamaAttention(nn.Module):
    def __init__(
        self, cfg: ModelArchConfig, layer_idx: int, rotary: RotaryEmbedding, options: DecoderOptions
    ):
        super().__init__()
        self.head_dim = cfg.head_dim
        self.qkv_proj = QKVParallelLinear(
            cfg.hidden_size,
            cfg.head_dim,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            bias=options.qkv_bias,
        )
        self.q_size = self.qkv_proj.q_size  # this rank's share
        self.kv_size = self.qkv_proj.kv_size
        self.o_proj = RowParallelLinear(cfg.q_size, cfg.hidden_size, bias=options.o_proj_bias)
        self.rotary_emb = rotary
        self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if options.qk_norm else None
        self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if options.qk_norm else None
        self.attn = Attention(
            layer_idx,
            self.qkv_proj.num_heads,
            self.qkv_proj.num_kv_heads,
            cfg.head_dim,
            scale=cfg.head_dim**-0.5,
        )

    def forward(
        self,
        positions: torch.Tensor,  # [num_tokens] int64
        hidden: torch.Tensor | PendingNorm,  # [num_tokens, hidden_size], normed
        residual: torch.Tensor,  # [num_tokens, hidden_size]
        then_norm: RMSNorm,
    ) -> tuple[torch.Tensor | PendingNorm, torch.Tensor]:
        """``then_norm(attention(hidden), residual)``: the output added to the residual stream and normed
        for the MLP (see ``RowParallelLinear.add_and_norm``), and the new residual stream."""
        sizes = [self.q_size, self.kv_size, self.kv_size]
        # A decode step on CUDA: q and k come out of the projection rotated (no qk norm in between), and
        # the same launch stores K/V.
        qkv = None
        if self.q_norm is None:
            destination = self.attn.kv_destination() if STORE_KV_IN_QKV else None
            qkv = self.qkv_proj.fused_rotary(hidden, positions, self.rotary_emb, destination)
        kv_stored = qkv is not None and STORE_KV_IN_QKV
        if qkv is not None:
            q, k, v = qkv.split(sizes, dim=-1)
        else:
            q, k, v = self.qkv_proj(hidden).split(sizes, dim=-1)  # [num_tokens, q_size + 2 * kv_size]
            q, k, kv_stored = self._norm_rotate_and_store(positions, q, k, v)
        out = self.attn(q, k, v, kv_stored=kv_stored)  # [num_tokens, q_size]
        return self.o_proj.add_and_norm(out, residual, then_norm)

    def _norm_rotate_and_store(
        self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Rotary, after each head's RMSNorm where the model has one (Qwen3); True where k and v went into
        the KV cache as well. On CUDA, with q and k side by side in the projection's output, all of it is
        one launch, in place (the attention layer then writes no K/V)."""
        if self.q_norm is None or self.k_norm is None:
            if self.rotary_emb.rotate_and_store(positions, q, k, self.attn.kv_store(v)):
                return q, k, True
            return *self.rotary_emb(positions, q, k), False
        joint = side_by_side(q, k) if fused_ops.is_available(q) and positions.stride(0) == 1 else None
        if joint is not None and self.q_norm.eps == self.k_norm.eps:
            _qk_norm_rope().qk_norm_rope_inplace(
                joint,
                positions,
                self.rotary_emb.cos_cache,
                self.rotary_emb.sin_cache,
                self.q_norm.weight,
                self.k_norm.weight,
                self.q_norm.eps,
                self.head_dim,
                self.q_size // self.head_dim,
                kv_store=self.attn.kv_store(v),
            )
            return q, k, True
        q = self.q_norm(q.unflatten(-1, (-1, self.head_dim))).flatten(1)
        k = self.k_norm(k.unflatten(-1, (-1, self.head_dim))).flatten(1)
        return *self.rotary_emb(positions, q, k), False


# The rotated qkv launch of a decode step stores K/V itself; "0": attention's K/V write does (A/B runs).
STORE_KV_IN_QKV = os.environ.get("PAGEDLLM_QKV_STORES_KV", "1") != "0"


@functools.cache
def _qk_norm_rope() -> ModuleType:
    from pagedllm.model.layers import qk_norm_rope  # NOTE: imports triton: CUDA only

    return qk_norm_rope


class LlamaMLP(nn.Module):
    def __init__(self, cfg: ModelArchConfig):
        super().__init__()
        size = cfg.intermediate_size
        self.gate_up_proj = MergedColumnParallelLinear(cfg.hidden_size, [size, size], bias=cfg.mlp_bias)
        self.act_fn = SiluAndMul()
        self.down_proj = RowParallelLinear(size, cfg.hidden_size, bias=cfg.mlp_bias)

    def forward(
        self,
        x: torch.Tensor | PendingNorm,  # [num_tokens, hidden_size], normed
        residual: torch.Tensor,  # [num_tokens, hidden_size]
        then_norm: RMSNorm,
        hand_over: bool,
    ) -> tuple[torch.Tensor | PendingNorm, torch.Tensor]:
        """``then_norm(mlp(x), residual)`` and the new residual stream; the norm is handed over to the next
        linear layer only if ``hand_over`` (the model's final norm feeds the LM head, which cannot take
        it)."""
        hidden = self.gate_up_proj.fused_silu_and_mul(x)  # a decode step on CUDA: one launch for both
        if hidden is None:
            hidden = self.act_fn(self.gate_up_proj(x))
        if hand_over:
            return self.down_proj.add_and_norm(hidden, residual, then_norm)
        return then_norm(self.down_proj(hidden), residual)


class LlamaDecoderLayer(nn.Module):
    def __init__(
        self, cfg: ModelArchConfig, layer_idx: int, rotary: RotaryEmbedding, options: DecoderOptions
    ):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = LlamaAttention(cfg, layer_idx, rotary, options)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = LlamaMLP(cfg)

    def forward(
        self,
        positions: torch.Tensor,  # [num_tokens]
        hidden: torch.Tensor | PendingNorm,  # [num_tokens, hidden_size]: input_layernorm's output
        residual: torch.Tensor,  # [num_tokens, hidden_size]
        next_norm: RMSNorm,  # the next layer's input_layernorm, or the model's final norm
        hand_over: bool,  # whether next_norm's consumer takes a PendingNorm
    ) -> tuple[torch.Tensor | PendingNorm, torch.Tensor]:
        """``(next_norm(h), h)``, ``h`` the residual stream after this layer.

        The residual stream is carried separately so that each norm fuses in the add before it; each layer
        ends with the next one's input norm so that its last linear layer can hand that norm over to the
        next layer's first (``RowParallelLinear.add_and_norm``)."""
        hidden, residual = self.self_attn(positions, hidden, residual, self.post_attention_layernorm)
        return self.mlp(hidden, residual, next_norm, hand_over)


class LlamaModel(nn.Module):
    def __init__(self, cfg: ModelArchConfig, options: DecoderOptions):
        super().__init__()
        self.embed_tokens = VocabParallelEmbedding(cfg.vocab_size, cfg.hidden_size)
        # One cos/sin cache for all layers.
        rotary = RotaryEmbedding(cfg.head_dim, cfg.max_position_embeddings, cfg.rope_theta, cfg.rope_scaling)
        self.layers = nn.ModuleList(
            LlamaDecoderLayer(cfg, i, rotary, options) for i in range(cfg.num_hidden_layers)
        )
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        residual = self.embed_tokens(input_ids)  # [num_tokens, hidden_size]
        layers: list[LlamaDecoderLayer] = list(self.layers)  # type: ignore[arg-type]
        hidden: torch.Tensor | PendingNorm = layers[0].input_layernorm(residual)
        for i, layer in enumerate(layers):
            last = i + 1 == len(layers)
            next_norm = self.norm if last else layers[i + 1].input_layernorm
            hidden, residual = layer(positions, hidden, residual, next_norm, hand_over=not last)
        assert isinstance(hidden, torch.Tensor), "the last layer does not hand its norm over"
        return hidden


class LlamaForCausalLM(nn.Module):
    # Checkpoint projections that live fused in this model, with the shard id each fills.
    packed_modules: ClassVar[PackedModules] = {
        "qkv_proj": (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")),
        "gate_up_proj": (("gate_proj", 0), ("up_proj", 1)),
    }

    def __init__(self, cfg: ModelArchConfig):
        super().__init__()
        if cfg.sliding_window is not None and cfg.sliding_window < cfg.max_position_embeddings:
            raise ValueError(
                f"sliding_window={cfg.sliding_window} (< max_position_embeddings="
                f"{cfg.max_position_embeddings}) is not supported: attention always sees the whole context"
            )
        self.cfg = cfg
        self.model = LlamaModel(cfg, self.decoder_options(cfg))
        tied = self.model.embed_tokens if cfg.tie_word_embeddings else None
        self.lm_head = ParallelLMHead(cfg.vocab_size, cfg.hidden_size, tied_to=tied)

    @classmethod
    def decoder_options(cls, cfg: ModelArchConfig) -> DecoderOptions:
        return DecoderOptions(qkv_bias=cfg.attention_bias, o_proj_bias=cfg.attention_bias, qk_norm=False)

    def forward(
        self,
        input_ids: torch.Tensor,  # [num_tokens] int64
        positions: torch.Tensor,  # [num_tokens] int64
    ) -> torch.Tensor:  # [num_tokens, hidden_size]
        return self.model(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:  # [n, hidden_size] -> [n, vocab]
        """In the model's dtype: the sampler upcasts only where it computes with them (greedy decoding
        takes the argmax of these directly, exact: upcasting changes no value and no order)."""
        return self.lm_head(hidden)  # type: ignore[no-any-return]

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        load_checkpoint_weights(self, weights, self.packed_modules, self._should_skip)

    def _should_skip(self, name: str) -> bool:
        # Old checkpoints saved RoPE tables; we build our own.
        if "rotary_emb." in name:
            return True
        # Tied checkpoints sometimes store the head anyway: it is the embedding, loaded under that name.
        return self.cfg.tie_word_embeddings and name == "lm_head.weight"
