"""Triton kernels for the model's element-wise layers on CUDA: one pass instead of a chain of torch ops.

A decode step of a small model runs each layer's norms, rotary and SiLU-and-multiply over a few hundred
rows; as torch ops each is 5-10 launches of ~2 us that read and write the activations again (measured
on an H100: ~40% of a Llama-3.2-1B decode step at batch 64). Each kernel here is one launch and rounds
exactly where the torch code it replaces rounds (the add and every product in the model dtype, the
reduction in float32), so results match it bit for bit in bfloat16 up to the last ulp of rsqrt/exp.

Used only for CUDA tensors when triton imports (``is_available``); the torch code stays the reference
and the CPU path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from pagedllm import pdl

if TYPE_CHECKING:
    from pagedllm.attention.layer import KVStore

try:
    import triton
    import triton.language as tl

    _HAVE_TRITON = True
except ImportError:  # CPU installs without triton: the layers keep their torch path
    _HAVE_TRITON = False


def is_available(x: torch.Tensor) -> bool:
    return _HAVE_TRITON and x.is_cuda


if _HAVE_TRITON:

    @triton.jit
    def _rms_norm_kernel(
        x_ptr,  # [rows, n]
        residual_ptr,  # [rows, n] (read and overwritten with x + residual) or unused
        out_ptr,  # [rows, n]
        weight_ptr,  # [n]
        n,
        stride_x,
        stride_r,
        stride_o,
        eps,
        HAS_RESIDUAL: tl.constexpr,
        BLOCK: tl.constexpr,
        USE_PDL: tl.constexpr,
    ):
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        mask = cols < n
        w = tl.load(weight_ptr + cols, mask=mask, other=0.0)  # a weight: read before the wait
        pdl.wait_then_release(USE_PDL)
        x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0)
        if HAS_RESIDUAL:
            r = tl.load(residual_ptr + row * stride_r + cols, mask=mask, other=0.0)
            x = (x.to(tl.float32) + r.to(tl.float32)).to(x.dtype)  # the add rounds in the model dtype
            tl.store(residual_ptr + row * stride_r + cols, x, mask=mask)
        x32 = x.to(tl.float32)
        normed = (x32 * inverse_rms(tl.sum(x32 * x32, axis=0), n, eps)).to(x.dtype)
        out = (normed.to(tl.float32) * w.to(tl.float32)).to(x.dtype)
        tl.store(out_ptr + row * stride_o + cols, out, mask=mask)

    @triton.jit
    def _silu_and_mul_kernel(
        x_ptr,  # [rows, 2 * d]: [gate | up]
        out_ptr,  # [rows, d]
        d,
        stride_x,
        stride_o,
        BLOCK: tl.constexpr,
        USE_PDL: tl.constexpr,
    ):
        pdl.wait_then_release(USE_PDL)
        row = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = cols < d
        gate = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0)
        up = tl.load(x_ptr + row * stride_x + d + cols, mask=mask, other=0.0)
        g32 = gate.to(tl.float32)
        silu = (g32 / (1.0 + tl.exp(-g32))).to(gate.dtype)  # F.silu rounds to the model dtype
        out = (silu.to(tl.float32) * up.to(tl.float32)).to(gate.dtype)
        tl.store(out_ptr + row * stride_o + cols, out, mask=mask)

    @triton.jit
    def _rotary_kernel(
        x_ptr,  # [tokens, heads * head_dim], rotated in place
        positions_ptr,  # [tokens] int64
        cos_ptr,  # [max_position, head_dim // 2] float32
        sin_ptr,
        num_heads,
        stride_x,
        v_ptr,  # STORE_KV: [tokens, kv_heads * head_dim], the values to store with the keys
        stride_v,
        cache_ptr,  # STORE_KV: [2, num_blocks, block_size, kv_heads, head_dim]
        slot_mapping_ptr,  # STORE_KV: [tokens] int64, -1 = store nothing
        first_k_head,  # STORE_KV: x's heads from this one on are the keys
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
        hmask = heads < num_heads
        cmask = cols < HALF
        mask = hmask & cmask
        # The position and slot (step inputs) and cos/sin (a table) are read before the wait: only x and
        # v come from the kernels before.
        pos = tl.load(positions_ptr + token)
        cos = tl.load(cos_ptr + pos * HALF + cols, mask=cmask, other=0.0)
        sin = tl.load(sin_ptr + pos * HALF + cols, mask=cmask, other=0.0)
        slot = -1
        if STORE_KV:
            slot = tl.load(slot_mapping_ptr + token)
        pdl.wait_then_release(USE_PDL)
        base = x_ptr + token * stride_x + heads * (2 * HALF) + cols
        x1 = tl.load(base, mask=mask, other=0.0)
        x2 = tl.load(base + HALF, mask=mask, other=0.0)
        v1, v2 = x1, x2  # placeholders: STORE_KV (a compile-time choice) loads the values
        if STORE_KV:
            v1, v2 = load_token_v(heads - first_k_head, cols, mask, slot, v_ptr + token * stride_v, HALF)
        out1, out2 = rotate_halves(x1, x2, cos, sin)
        tl.store(base, out1, mask=mask)
        tl.store(base + HALF, out2, mask=mask)
        if STORE_KV:
            store_token_kv(out1, out2, v1, v2, heads - first_k_head, cols, mask, cache_ptr, slot,
                           stride_ckv, stride_cb, stride_ct, stride_ch, HALF, BLOCK_SIZE)  # fmt: skip

    @triton.jit
    def load_token_v(kv_head, cols, mask, slot, v_row_ptr, HALF: tl.constexpr):
        """The two halves of the values ``store_token_kv`` stores: ``kv_head >= 0`` rows of ``2 * HALF``
        at ``v_row_ptr``, nothing where ``slot < 0``. Loaded with the keys, right after the wait: loaded
        where they are stored, after the keys' stores, they cost the kernel a second round trip to
        memory (the compiler cannot move a load above stores it cannot prove apart from it)."""
        ok = tl.where(slot >= 0, mask & (kv_head >= 0), False)
        v_src = v_row_ptr + kv_head * (2 * HALF) + cols
        return tl.load(v_src, mask=ok), tl.load(v_src + HALF, mask=ok)

    @triton.jit
    def store_token_kv(
        k1, k2, v1, v2, kv_head, cols, mask, cache_ptr, slot, stride_ckv, stride_cb, stride_ct, stride_ch,
        HALF: tl.constexpr, BLOCK_SIZE: tl.constexpr,
    ):  # fmt: skip
        """Stores one token's keys and values at ``slot`` of a paged cache (``[2, blocks, block_size,
        kv_heads, head_dim]``) as ``write_kv_cache`` does, nothing where ``slot < 0``. ``k1``/``k2``:
        the halves of the token's heads (``[HEADS_P, HALF_P]``), of which the rows with ``kv_head >= 0``
        are keys; ``v1``/``v2``: ``load_token_v``'s. Shared by the kernels that produce the keys (rotary
        here, ``qk_norm_rope``), through the module."""
        ok = tl.where(slot >= 0, mask & (kv_head >= 0), False)
        dst = cache_ptr + (slot // BLOCK_SIZE) * stride_cb + (slot % BLOCK_SIZE) * stride_ct
        dst = dst + kv_head * stride_ch + cols
        dtype = cache_ptr.dtype.element_ty
        tl.store(dst, k1.to(dtype), mask=ok)
        tl.store(dst + HALF, k2.to(dtype), mask=ok)
        tl.store(dst + stride_ckv, v1.to(dtype), mask=ok)
        tl.store(dst + stride_ckv + HALF, v2.to(dtype), mask=ok)

    @triton.jit
    def inverse_rms(sum_of_squares, n, eps):
        """RMSNorm's float32 scale, ``1 / sqrt(sum_of_squares / n + eps)``. Shared by every kernel that
        normalizes (this module's norm, ``qk_norm_rope``, a skinny linear taking a handed-over norm),
        which call it through the module, so that all of them round alike."""
        return 1.0 / tl.sqrt(sum_of_squares / n + eps)

    @triton.jit
    def rotate_halves(x1, x2, cos, sin):
        """``(x1 cos - x2 sin, x2 cos + x1 sin)`` for a head's two halves in the model dtype, rounded as
        torch rotates in that dtype: cos and sin are cast to it, and every product and sum rounds there.
        Shared by every kernel that rotates (this module's, ``qk_norm_rope``, ``skinny_linear``'s
        epilogue), which call it through the module (see ``interpreter_compat``)."""
        dtype = x1.dtype
        c = cos.to(dtype).to(tl.float32)
        s = sin.to(dtype).to(tl.float32)
        a = x1.to(tl.float32)
        b = x2.to(tl.float32)
        ac = (a * c).to(dtype).to(tl.float32)
        bs = (b * s).to(dtype).to(tl.float32)
        bc = (b * c).to(dtype).to(tl.float32)
        as_ = (a * s).to(dtype).to(tl.float32)
        return (ac - bs).to(dtype), (bc + as_).to(dtype)


def rms_norm(
    x: torch.Tensor,  # [rows, n]
    weight: torch.Tensor,  # [n]
    eps: float,
    residual: torch.Tensor | None = None,  # [rows, n]: becomes x + residual, in place
) -> torch.Tensor:  # [rows, n]
    n = x.shape[-1]
    x2 = x.reshape(-1, n)
    out = torch.empty_like(x2)
    rows = x2.shape[0]
    if rows:
        r2 = residual.view(-1, n) if residual is not None else x2
        block = triton.next_power_of_2(n)
        use_pdl = pdl.enabled(x.device)
        _rms_norm_kernel[(rows,)](
            x2,
            r2,
            out,
            weight,
            n,
            x2.stride(0),
            r2.stride(0),
            out.stride(0),
            eps,
            HAS_RESIDUAL=residual is not None,
            BLOCK=block,
            num_warps=min(16, max(1, block // 256)),
            **pdl.kernel_args(use_pdl),
        )
    return out.view(x.shape)


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:  # [rows, 2 * d] -> [rows, d]
    d = x.shape[-1] // 2
    x2 = x.reshape(-1, 2 * d)
    out = torch.empty(x2.shape[0], d, dtype=x.dtype, device=x.device)
    if x2.shape[0]:
        block = min(2048, triton.next_power_of_2(d))
        use_pdl = pdl.enabled(x.device)
        _silu_and_mul_kernel[(x2.shape[0], triton.cdiv(d, block))](
            x2, out, d, x2.stride(0), out.stride(0), BLOCK=block, num_warps=4,
            **pdl.kernel_args(use_pdl),
        )  # fmt: skip
    return out.view(*x.shape[:-1], d)


def rotary_inplace(
    x: torch.Tensor,  # [tokens, heads * head_dim], contiguous along the last dimension
    positions: torch.Tensor,  # [tokens] int64
    cos_cache: torch.Tensor,  # [max_position, head_dim // 2] float32
    sin_cache: torch.Tensor,
    head_dim: int,
    kv_store: KVStore | None = None,
) -> None:
    """Rotates every head of ``x`` in place. ``kv_store``: ``x`` ends with the step's keys (as many heads
    as the cache holds), which are stored, rotated, with ``kv_store.value`` at the step's slots."""
    tokens = x.shape[0]
    if not tokens:
        return
    heads = x.shape[1] // head_dim
    half = head_dim // 2
    use_pdl = pdl.enabled(x.device)
    _rotary_kernel[(tokens,)](
        x,
        positions,
        cos_cache,
        sin_cache,
        heads,
        x.stride(0),
        *kv_store_args(kv_store, heads, head_dim, tokens, placeholder=x),
        HALF=half,
        HEADS_P=triton.next_power_of_2(heads),
        HALF_P=triton.next_power_of_2(half),
        STORE_KV=kv_store is not None,
        BLOCK_SIZE=kv_store.kv_cache.shape[2] if kv_store is not None else 1,
        num_warps=4,
        **pdl.kernel_args(use_pdl),
    )


def is_paged_cache(cache: torch.Tensor, head_dim: int) -> bool:
    """Whether ``cache`` is laid out as the paged K/V cache of heads of ``head_dim`` that the step kernels
    store into: ``[2, blocks, block_size, kv_heads, head_dim]`` (any outer strides), head_dim contiguous."""
    return cache.dim() == 5 and cache.shape[0] == 2 and cache.shape[4] == head_dim and cache.stride(4) == 1


def kv_store_args(
    kv_store: KVStore | None, heads: int, head_dim: int, tokens: int, placeholder: torch.Tensor
) -> tuple:
    """The kernel arguments of ``store_token_kv`` for a launch over ``heads`` heads of ``head_dim`` that
    end with the keys: (values, their row stride, cache, slots, first key head, the cache's four strides),
    after checking that the store fits the launch; without a store, ``placeholder`` and zeros."""
    if kv_store is None:
        return (placeholder, 0, placeholder, placeholder, 0, 0, 0, 0, 0)
    value, cache, slots = kv_store.value, kv_store.kv_cache, kv_store.slot_mapping
    kv_heads = cache.shape[3] if cache.dim() == 5 else -1
    if (
        not is_paged_cache(cache, head_dim)
        or not 0 < kv_heads <= heads
        or value.shape != (tokens, kv_heads * head_dim)
        or value.stride(-1) != 1
        or slots.shape != (tokens,)
    ):
        raise ValueError(
            f"a K/V store of values {tuple(value.shape)}, cache {tuple(cache.shape)} (head_dim contiguous) "
            f"and slots {tuple(slots.shape)} does not fit {tokens} tokens of {heads} heads of {head_dim}"
        )
    return (value, value.stride(0), cache, slots, heads - kv_heads, *cache.stride()[:4])
