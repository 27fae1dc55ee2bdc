"""Scatter one step's new K and V into the paged cache, one program per token."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from pagedllm import pdl


@triton.jit
def _write_kv_kernel(
    key_ptr,  # [num_tokens, num_kv_heads, head_dim]
    value_ptr,  # [num_tokens, num_kv_heads, head_dim]
    cache_ptr,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
    slot_mapping_ptr,  # [num_tokens] int64, -1 = skip
    stride_kt,
    stride_kh,
    stride_vt,
    stride_vh,
    stride_ckv,  # cache strides: K -> V, block, token in block, kv head (head_dim is contiguous)
    stride_cb,
    stride_ct,
    stride_ch,
    NUM_KV_HEADS: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    HEADS_P: tl.constexpr,  # NUM_KV_HEADS and HEAD_DIM rounded up to powers of two
    HEAD_DIM_P: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    slot = tl.load(slot_mapping_ptr + token)  # a step input: read before the wait
    if slot < 0:
        return
    pdl.wait_then_release(USE_PDL)
    block = slot // BLOCK_SIZE
    offset = slot % BLOCK_SIZE
    h = tl.arange(0, HEADS_P)[:, None]
    d = tl.arange(0, HEAD_DIM_P)[None, :]
    mask = (h < NUM_KV_HEADS) & (d < HEAD_DIM)
    k = tl.load(key_ptr + token * stride_kt + h * stride_kh + d, mask=mask)
    v = tl.load(value_ptr + token * stride_vt + h * stride_vh + d, mask=mask)
    dst = cache_ptr + block * stride_cb + offset * stride_ct + h * stride_ch + d
    tl.store(dst, k.to(cache_ptr.dtype.element_ty), mask=mask)
    tl.store(dst + stride_ckv, v.to(cache_ptr.dtype.element_ty), mask=mask)


def write_kv_cache(
    key: torch.Tensor,  # [num_tokens, num_kv_heads, head_dim]
    value: torch.Tensor,  # [num_tokens, num_kv_heads, head_dim]
    kv_cache: torch.Tensor,  # [2, num_blocks, block_size, num_kv_heads, head_dim]
    slot_mapping: torch.Tensor,  # [num_tokens] int64, -1 = skip
) -> None:
    """``kv_cache[:, slot // block_size, slot % block_size] = key, value`` for every slot >= 0."""
    num_tokens, num_kv_heads, head_dim = key.shape
    if num_tokens == 0:
        return
    _check_cache(kv_cache, num_kv_heads, head_dim)
    if key.stride(2) != 1 or value.stride(2) != 1:
        raise ValueError("key and value must be contiguous along head_dim")
    block_size = kv_cache.shape[2]
    use_pdl = pdl.enabled(key.device)
    _write_kv_kernel[(num_tokens,)](
        key,
        value,
        kv_cache,
        slot_mapping,
        key.stride(0),
        key.stride(1),
        value.stride(0),
        value.stride(1),
        kv_cache.stride(0),
        kv_cache.stride(1),
        kv_cache.stride(2),
        kv_cache.stride(3),
        NUM_KV_HEADS=num_kv_heads,
        HEAD_DIM=head_dim,
        HEADS_P=triton.next_power_of_2(num_kv_heads),
        HEAD_DIM_P=triton.next_power_of_2(head_dim),
        BLOCK_SIZE=block_size,
        num_warps=4 if num_kv_heads * head_dim >= 1024 else 1,
        **pdl.kernel_args(use_pdl),
    )


def _check_cache(kv_cache: torch.Tensor, num_kv_heads: int, head_dim: int) -> None:
    if kv_cache.dim() != 5 or kv_cache.shape[0] != 2:
        raise ValueError(
            f"kv_cache must be [2, num_blocks, block_size, heads, dim], got {tuple(kv_cache.shape)}"
        )
    if kv_cache.shape[3] != num_kv_heads or kv_cache.shape[4] != head_dim:
        raise ValueError(
            f"kv_cache holds {kv_cache.shape[3]} heads of {kv_cache.shape[4]}, "
            f"the step brings {num_kv_heads} of {head_dim}"
        )
    if kv_cache.stride(4) != 1:
        raise ValueError("kv_cache must be contiguous along head_dim")
