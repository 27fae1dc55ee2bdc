"""Qwen3's per-head RMSNorm of q and k, then rotary, in one Triton launch over the qkv projection's output.

Unfused, a Qwen3 layer copies q and k out of the projection's output (the per-head norm wants them
contiguous), launches a norm and a rotary for each: six launches of ~2 us a layer at decode batch sizes
(a Qwen3-0.6B decode step at 64 x 512 spent ~13% of its GPU time in them; H100, session 12). Here one
program per token normalizes and rotates every q and k head in place, rounding where RMSNorm and the
rotary kernel round (the norm's scale and weight products, cos/sin and every rotary product in the model
dtype; sums in float32). CUDA only: imported on first use, after the tests set ``TRITON_INTERPRET``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

from pagedllm import pdl
from pagedllm.model.layers import fused_ops

if TYPE_CHECKING:
    from pagedllm.attention.layer import KVStore


@triton.jit
def _qk_norm_rope_kernel(
    x_ptr,  # [tokens, num_heads * 2 * HALF]: the q heads, then the k heads; normalized and rotated in place
    positions_ptr,  # [tokens] int64
    cos_ptr,  # [max_position, HALF] float32
    sin_ptr,
    q_weight_ptr,  # [2 * HALF]: q_norm's weight
    k_weight_ptr,  # [2 * HALF]: k_norm's weight
    num_q_heads,
    num_heads,  # q and k heads
    stride_x,
    eps,
    v_ptr,  # STORE_KV: fused_ops.store_token_kv's arguments (the k heads follow the q heads)
    stride_v,
    cache_ptr,
    slot_mapping_ptr,
    first_k_head,
    stride_ckv,
    stride_cb,
    stride_ct,
    stride_ch,
    HALF: tl.constexpr,
    HEADS_P: tl.constexpr,
    HALF_P: tl.constexpr,
    STORE_KV: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    heads = tl.arange(0, HEADS_P)[:, None]
    cols = tl.arange(0, HALF_P)[None, :]
    cmask = cols < HALF
    mask = (heads < num_heads) & cmask
    # The position and slot (step inputs), cos/sin (a table) and the norms' weights are read before the
    # wait.
    pos = tl.load(positions_ptr + token)
    slot = -1
    if STORE_KV:
        slot = tl.load(slot_mapping_ptr + token)
    cos = tl.load(cos_ptr + pos * HALF + cols, mask=cmask, other=0.0)
    sin = tl.load(sin_ptr + pos * HALF + cols, mask=cmask, other=0.0)
    is_q = heads < num_q_heads
    w1 = tl.where(
        is_q,
        tl.load(q_weight_ptr + cols, mask=cmask, other=0.0),
        tl.load(k_weight_ptr + cols, mask=cmask, other=0.0),
    )
    w2 = tl.where(
        is_q,
        tl.load(q_weight_ptr + HALF + cols, mask=cmask, other=0.0),
        tl.load(k_weight_ptr + HALF + cols, mask=cmask, other=0.0),
    )
    pdl.wait_then_release(USE_PDL)
    base = x_ptr + token * stride_x + heads * (2 * HALF) + cols
    x1 = tl.load(base, mask=mask, other=0.0)
    x2 = tl.load(base + HALF, mask=mask, other=0.0)
    v1, v2 = x1, x2  # placeholders: STORE_KV (a compile-time choice) loads the values
    if STORE_KV:
        v_row = v_ptr + token * stride_v
        v1, v2 = fused_ops.load_token_v(heads - first_k_head, cols, mask, slot, v_row, HALF)
    dtype = x1.dtype
    a32 = x1.to(tl.float32)
    b32 = x2.to(tl.float32)
    sum_of_squares = tl.sum(a32 * a32, axis=1) + tl.sum(b32 * b32, axis=1)  # [HEADS_P], per head
    inv_rms = fused_ops.inverse_rms(sum_of_squares, 2 * HALF, eps)[:, None]
    a = ((a32 * inv_rms).to(dtype).to(tl.float32) * w1.to(tl.float32)).to(dtype)
    b = ((b32 * inv_rms).to(dtype).to(tl.float32) * w2.to(tl.float32)).to(dtype)
    out1, out2 = fused_ops.rotate_halves(a, b, cos, sin)
    tl.store(base, out1, mask=mask)
    tl.store(base + HALF, out2, mask=mask)
    if STORE_KV:
        fused_ops.store_token_kv(out1, out2, v1, v2, heads - first_k_head, cols, mask, cache_ptr, slot,
                                 stride_ckv, stride_cb, stride_ct, stride_ch, HALF, BLOCK_SIZE)  # fmt: skip


def qk_norm_rope_inplace(
    qk: torch.Tensor,  # [tokens, (num_q_heads + num_k_heads) * head_dim], contiguous along the last dim
    positions: torch.Tensor,  # [tokens] int64
    cos_cache: torch.Tensor,  # [max_position, head_dim // 2] float32
    sin_cache: torch.Tensor,
    q_weight: torch.Tensor,  # [head_dim]
    k_weight: torch.Tensor,  # [head_dim]
    eps: float,
    head_dim: int,
    num_q_heads: int,
    kv_store: KVStore | None = None,
) -> None:
    """``RMSNorm`` of every head (q_norm's weight for the first ``num_q_heads``, k_norm's for the rest), then
    rotary by each token's position, in place. ``kv_store``: the k heads, normed and rotated, and
    ``kv_store.value`` are stored at the step's slots too (``fused_ops.rotary_inplace``)."""
    tokens = qk.shape[0]
    if qk.stride(-1) != 1 or qk.shape[1] % head_dim or head_dim % 2:
        raise ValueError(f"qk must be whole heads of {head_dim} (even), contiguous along them: {qk.shape}")
    if q_weight.shape != (head_dim,) or k_weight.shape != (head_dim,):
        raise ValueError(f"q/k norm weights must be [{head_dim}]: {q_weight.shape}, {k_weight.shape}")
    if not tokens:
        return
    heads = qk.shape[1] // head_dim
    half = head_dim // 2
    _qk_norm_rope_kernel[(tokens,)](
        qk,
        positions,
        cos_cache,
        sin_cache,
        q_weight,
        k_weight,
        num_q_heads,
        heads,
        qk.stride(0),
        eps,
        *fused_ops.kv_store_args(kv_store, heads, head_dim, tokens, placeholder=qk),
        HALF=half,
        HEADS_P=triton.next_power_of_2(heads),
        HALF_P=triton.next_power_of_2(half),
        STORE_KV=kv_store is not None,
        BLOCK_SIZE=kv_store.kv_cache.shape[2] if kv_store is not None else 1,
        num_warps=4,
        **pdl.kernel_args(pdl.enabled(qk.device)),
    )
