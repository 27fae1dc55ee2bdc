"""Rotary position embedding, Hugging Face layout (``rotate_half``: the two halves of a head pair up).

The inverse frequencies follow transformers' arithmetic operation for operation, so float32 logits
match it; cos/sin for every position up to ``max_position`` are computed once and shared by all layers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from pagedllm.model.config import RopeScaling
from pagedllm.model.layers import fused_ops

if TYPE_CHECKING:
    from pagedllm.attention.layer import KVStore


def compute_inv_freq(head_dim: int, base: float, scaling: RopeScaling | None) -> torch.Tensor:
    """The rotation frequency of each dimension pair: ``[head_dim // 2]`` float32, on the CPU.

    NOTE: computed on the CPU like transformers does, so both runs start from identical bits.
    """
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").float() / head_dim
    inv_freq = 1.0 / (base**exponents)
    if scaling is None:
        return inv_freq
    if scaling.rope_type == "linear":
        return inv_freq / scaling.factor
    return _llama3_inv_freq(inv_freq, scaling)


def _llama3_inv_freq(inv_freq: torch.Tensor, scaling: RopeScaling) -> torch.Tensor:
    """Llama-3.1 long-context scaling: slow the low frequencies by ``factor``, keep the high ones, and
    interpolate smoothly in between (by wavelength against the original context length)."""
    assert scaling.low_freq_factor is not None and scaling.high_freq_factor is not None
    assert scaling.original_max_position_embeddings is not None
    factor, low, high = scaling.factor, scaling.low_freq_factor, scaling.high_freq_factor
    original_len = scaling.original_max_position_embeddings
    low_freq_wavelen = original_len / low
    high_freq_wavelen = original_len / high

    wavelen = 2 * math.pi / inv_freq
    is_low_freq = wavelen > low_freq_wavelen
    is_high_freq = wavelen < high_freq_wavelen
    scaled = torch.where(is_low_freq, inv_freq / factor, inv_freq)
    smooth = (original_len / wavelen - low) / (high - low)
    # NOTE: keep this operation order; it is what makes fp32 results bit-identical to transformers.
    interpolated = (1 - smooth) * scaled / factor + smooth * scaled
    return torch.where(~is_low_freq & ~is_high_freq, interpolated, scaled)


class RotaryEmbedding(nn.Module):
    def __init__(
        self, head_dim: int, max_position: int, base: float, scaling: RopeScaling | None = None
    ) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"head_dim={head_dim} must be even")
        if max_position <= 0:
            raise ValueError(f"max_position={max_position} must be > 0")
        self.head_dim = head_dim
        self.max_position = max_position
        inv_freq = compute_inv_freq(head_dim, base, scaling).to(torch.get_default_device())
        positions = torch.arange(max_position, dtype=torch.float32, device=inv_freq.device)
        freqs = positions[:, None] * inv_freq[None, :]  # [max_position, head_dim // 2]
        # Kept in float32 whatever the model dtype and cast at use, as transformers does.
        self.cos_cache: torch.Tensor
        self.sin_cache: torch.Tensor
        self.register_buffer("cos_cache", freqs.cos(), persistent=False)
        self.register_buffer("sin_cache", freqs.sin(), persistent=False)

    def forward(
        self,
        positions: torch.Tensor,  # [num_tokens] int64
        q: torch.Tensor,  # [num_tokens, num_heads * head_dim]
        k: torch.Tensor,  # [num_tokens, num_kv_heads * head_dim]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if fused_ops.is_available(q) and q.stride(-1) == 1 and k.stride(-1) == 1:
            # NOTE: rotates in place (q and k are usually views into the fused qkv projection's output,
            # side by side: then one launch rotates both, one fewer per layer in a decode step).
            joint = side_by_side(q, k)
            for x in (q, k) if joint is None else (joint,):
                fused_ops.rotary_inplace(x, positions, self.cos_cache, self.sin_cache, self.head_dim)
            return q, k
        cos = self.cos_cache[positions].to(q.dtype).unsqueeze(1)  # [num_tokens, 1, head_dim // 2]
        sin = self.sin_cache[positions].to(q.dtype).unsqueeze(1)
        return self._rotate(q, cos, sin), self._rotate(k, cos, sin)

    def rotate_and_store(
        self,
        positions: torch.Tensor,  # [num_tokens] int64
        q: torch.Tensor,  # [num_tokens, num_heads * head_dim]
        k: torch.Tensor,  # [num_tokens, num_kv_heads * head_dim]
        kv_store: KVStore,
    ) -> bool:
        """Rotates q and k in place and stores k (rotated) and ``kv_store.value`` in the KV cache, in one
        launch, where q and k lie side by side in one CUDA tensor (the fused qkv projection's output);
        False, with nothing done, elsewhere."""
        joint = side_by_side(q, k) if fused_ops.is_available(q) and q.stride(-1) == 1 else None
        if joint is None:
            return False
        fused_ops.rotary_inplace(joint, positions, self.cos_cache, self.sin_cache, self.head_dim, kv_store)
        return True

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        heads = x.unflatten(-1, (-1, self.head_dim))  # [num_tokens, heads, head_dim]
        x1, x2 = heads.chunk(2, dim=-1)  # [num_tokens, heads, head_dim // 2] each
        rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        return rotated.flatten(1)


def side_by_side(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor | None:
    """One view over q's heads then k's, when k's columns follow q's in the same rows of one tensor."""
    if not (q.dim() == k.dim() == 2 and q.shape[0] == k.shape[0] and q.dtype == k.dtype):
        return None
    if q.shape[0] > 1 and q.stride(0) != k.stride(0):
        return None
    if q.untyped_storage().data_ptr() != k.untyped_storage().data_ptr():
        return None
    if k.data_ptr() != q.data_ptr() + q.shape[1] * q.element_size():
        return None
    return q.as_strided((q.shape[0], q.shape[1] + k.shape[1]), q.stride())
