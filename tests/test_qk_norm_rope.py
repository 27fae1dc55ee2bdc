"""Qwen3's fused per-head q/k norm and rotary (``qk_norm_rope``) against the layers' torch code: on a GPU
compiled, on a machine without CUDA through Triton's interpreter (float32, small shapes)."""

from __future__ import annotations

import os

import pytest
import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

pytest.importorskip("triton", reason="triton is not installed")

from pagedllm.attention.triton.interpreter_compat import prepare_interpreter  # noqa: E402
from pagedllm.model.layers import RMSNorm, RotaryEmbedding  # noqa: E402
from pagedllm.model.layers.qk_norm_rope import qk_norm_rope_inplace  # noqa: E402

DEVICE = torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(autouse=True)
def _interpreter() -> None:
    prepare_interpreter()


@pytest.mark.parametrize(
    "head_dim,q_heads,kv_heads,tokens",
    [(32, 3, 1, 5), (64, 4, 2, 9)] + ([(128, 16, 8, 64)] if ON_GPU else []),  # Qwen3-0.6B's on a GPU
)
def test_each_head_is_normalized_with_its_norm_then_rotated_and_v_is_untouched(
    head_dim, q_heads, kv_heads, tokens
):
    dtype = torch.bfloat16 if ON_GPU else torch.float32
    q_norm, k_norm = (RMSNorm(head_dim, 1e-6).to(DEVICE) for _ in range(2))
    for norm in (q_norm, k_norm):
        norm.weight.data = torch.rand(head_dim, device=DEVICE) + 0.5  # two different weights
        norm.to(dtype)
    rotary = RotaryEmbedding(head_dim, 256, 1000000.0).to(DEVICE)
    q_size, kv_size = q_heads * head_dim, kv_heads * head_dim
    qkv = torch.randn(tokens, q_size + 2 * kv_size, device=DEVICE).to(dtype) * 3
    positions = torch.randint(0, 256, (tokens,), device=DEVICE)
    q, k, v = qkv.clone().split([q_size, kv_size, kv_size], dim=-1)
    # The torch path of the layers (Qwen3's attention before this kernel), rounding in the model dtype.
    ref_q = q_norm._norm(q.unflatten(-1, (-1, head_dim))).flatten(1)
    ref_k = k_norm._norm(k.unflatten(-1, (-1, head_dim))).flatten(1)
    cos = rotary.cos_cache[positions].to(dtype).unsqueeze(1)
    sin = rotary.sin_cache[positions].to(dtype).unsqueeze(1)
    ref_q, ref_k = rotary._rotate(ref_q, cos, sin), rotary._rotate(ref_k, cos, sin)
    qk_norm_rope_inplace(qkv[:, : q_size + kv_size], positions, rotary.cos_cache, rotary.sin_cache,
                         q_norm.weight, k_norm.weight, 1e-6, head_dim, q_heads)  # fmt: skip
    out_q, out_k, out_v = qkv.split([q_size, kv_size, kv_size], dim=-1)
    for out, ref in ((out_q, ref_q), (out_k, ref_k)):
        err = ((out.double() - ref.double()).abs().max() / ref.double().abs().max()).item()
        assert err < (1e-5 if dtype == torch.float32 else 1e-2), err
    assert torch.equal(out_v, v)


def test_heads_that_do_not_tile_the_row_are_refused():
    with pytest.raises(ValueError, match="whole heads"):
        qk_norm_rope_inplace(torch.ones(2, 48), torch.zeros(2, dtype=torch.long), torch.ones(8, 16),
                             torch.ones(8, 16), torch.ones(32), torch.ones(32), 1e-6, 32, 1)  # fmt: skip
