"""What a decode step's q and k still need when attention takes them straight from the projection.

In a pure-decode step a backend may store the step's K/V itself and attend to them from registers
(``AttentionBackend.takes_step_kv``): then the rotary kernel (or Qwen3's norm and rotary kernel) that would
otherwise rotate q and k and store K/V before attention is not launched, one launch fewer a layer.
``QKPrep`` says what that backend must apply to q and k first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

# "attention": attention rotates (and norms) q and k of a pure-decode step and stores its K/V;
# "qkv_rope": where the qkv projection's epilogue can rotate (Llama, up to 64 rows), it does, and attention
# only stores; "off": neither, the rotary kernel stores K/V (A/B runs).
STEP_KV_MODES = ("attention", "qkv_rope", "off")
STEP_KV_MODE = os.environ.get("PAGEDLLM_STEP_KV", "attention")
if STEP_KV_MODE not in STEP_KV_MODES:
    raise ValueError(f"PAGEDLLM_STEP_KV={STEP_KV_MODE!r}; choose one of {STEP_KV_MODES}")


@dataclass(frozen=True, slots=True)
class QKPrep:
    """Rotary by ``positions`` with ``RotaryEmbedding``'s ``cos_cache``/``sin_cache`` (``positions`` None:
    q and k come rotated) and, before it, each q and k head's RMSNorm with these weights (Qwen3's
    ``q_norm``/``k_norm``; None: no norm). Applied as those layers apply them, rounding where they round."""

    positions: torch.Tensor | None = None  # [num_tokens] int64
    cos_cache: torch.Tensor | None = None  # [max_position, head_dim // 2] float32
    sin_cache: torch.Tensor | None = None
    q_norm_weight: torch.Tensor | None = None  # [head_dim]
    k_norm_weight: torch.Tensor | None = None
    norm_eps: float = 0.0
