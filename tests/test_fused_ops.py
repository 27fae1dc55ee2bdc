"""The Triton element-wise kernels against the layers' torch code (GPU only; skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
pytest.importorskip("triton", reason="triton is not installed")

from pagedllm.model.layers import (  # noqa: E402
    RMSNorm,
    RotaryEmbedding,
    SiluAndMul,
    fused_ops,
)


def _close(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    assert not out.isnan().any()
    err = ((out.double() - ref.double()).norm() / ref.double().norm()).item()
    assert err < (1e-6 if dtype == torch.float32 else 4e-3), err


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows,n", [(1, 64), (37, 896), (300, 2048)])
def test_fused_rms_norm_with_residual_matches_torch(dtype, rows, n):
    norm = RMSNorm(n, 1e-5).to("cuda", dtype)
    norm.weight.data.normal_()
    x = torch.randn(rows, n, device="cuda", dtype=dtype)
    residual = torch.randn(rows, n, device="cuda", dtype=dtype)
    ref_sum = x + residual
    ref = norm._norm(ref_sum)
    out, new_residual = norm(x, residual.clone())
    _close(out, ref, dtype)
    torch.testing.assert_close(new_residual, ref_sum, rtol=0, atol=0)
    _close(norm(x), norm._norm(x), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_silu_and_mul_matches_torch(dtype):
    x = torch.randn(77, 2 * 8192, device="cuda", dtype=dtype)
    gate, up = x.chunk(2, dim=-1)
    _close(SiluAndMul()(x), torch.nn.functional.silu(gate) * up, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("head_dim,heads,kv_heads", [(64, 14, 2), (128, 32, 8)])
@pytest.mark.parametrize("layout", ["views of one qkv (one launch)", "separate tensors"])
def test_fused_rotary_matches_torch(dtype, head_dim, heads, kv_heads, layout):
    with torch.device("cuda"):
        rope = RotaryEmbedding(head_dim, 4096, 10000.0)
    tokens = 50
    qkv = torch.randn(tokens, (heads + 2 * kv_heads) * head_dim, device="cuda", dtype=dtype)
    q, k, v = qkv.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    v_before = v.clone()
    if layout == "separate tensors":
        q, k = q.clone(), k.clone()
    positions = torch.randint(0, 4096, (tokens,), device="cuda")
    cos = rope.cos_cache[positions].to(dtype).unsqueeze(1)
    sin = rope.sin_cache[positions].to(dtype).unsqueeze(1)
    ref_q, ref_k = rope._rotate(q.clone(), cos, sin), rope._rotate(k.clone(), cos, sin)
    assert fused_ops.is_available(q)
    out_q, out_k = rope(positions, q, k)
    _close(out_q, ref_q, dtype)
    _close(out_k, ref_k, dtype)
    torch.testing.assert_close(v, v_before, rtol=0, atol=0)  # the joint launch stops at k's last head
