"""The kernels that compute a step's keys (rotary; Qwen3's per-head norm and rotary) store them, with the
values, at the step's slots of the paged KV cache, in place of attention's own K/V write: exactly what
``write_kv_cache`` would store, nothing for a slot of -1 and nothing anywhere else. On a GPU compiled; on a
machine without CUDA through Triton's interpreter (float32, small shapes)."""

from __future__ import annotations

import os

import pytest
import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

pytest.importorskip("triton", reason="triton is not installed")

from pagedllm.attention.layer import KVStore  # noqa: E402
from pagedllm.attention.triton.interpreter_compat import prepare_interpreter  # noqa: E402
from pagedllm.model.layers import RotaryEmbedding, fused_ops  # noqa: E402
from pagedllm.model.layers.qk_norm_rope import qk_norm_rope_inplace  # noqa: E402

DEVICE = torch.device("cuda" if ON_GPU else "cpu")
DTYPE = torch.bfloat16 if ON_GPU else torch.float32
BLOCK_SIZE = 4


@pytest.fixture(autouse=True)
def _interpreter() -> None:
    prepare_interpreter()


def _step(tokens: int, q_heads: int, kv_heads: int, head_dim: int) -> tuple[torch.Tensor, ...]:
    """A qkv projection's output, positions, a NaN-poisoned cache of twice the slots the tokens need, and
    distinct random slots, one of them -1."""
    qkv = torch.randn(tokens, (q_heads + 2 * kv_heads) * head_dim, device=DEVICE).to(DTYPE)
    positions = torch.randint(0, 256, (tokens,), device=DEVICE)
    shape = (2, -(-2 * tokens // BLOCK_SIZE), BLOCK_SIZE, kv_heads, head_dim)
    cache = torch.full(shape, float("nan"), device=DEVICE, dtype=DTYPE)
    slots = torch.randperm(shape[1] * BLOCK_SIZE, device=DEVICE)[:tokens]
    slots[tokens // 2] = -1  # a padding row: stores nothing
    return qkv, positions, cache, slots


def _assert_stored_exactly(
    cache: torch.Tensor, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> None:
    """Each token's k and v at its slot, bit for bit; every other slot still NaN."""
    kv_heads, head_dim = cache.shape[3], cache.shape[4]
    flat = cache.view(2, -1, kv_heads, head_dim)
    written = torch.zeros(flat.shape[1], dtype=torch.bool, device=DEVICE)
    for t, slot in enumerate(slots.tolist()):
        if slot < 0:
            continue
        torch.testing.assert_close(flat[0, slot], k[t].view(kv_heads, head_dim), rtol=0, atol=0)
        torch.testing.assert_close(flat[1, slot], v[t].view(kv_heads, head_dim), rtol=0, atol=0)
        written[slot] = True
    assert flat[:, ~written].isnan().all(), "a slot no token names was written"


@pytest.mark.parametrize("head_dim,q_heads,kv_heads,tokens", [(16, 4, 2, 7), (32, 3, 1, 5)])
def test_rotary_stores_the_rotated_keys_and_the_values_at_their_slots(head_dim, q_heads, kv_heads, tokens):
    rotary = RotaryEmbedding(head_dim, 256, 10000.0).to(DEVICE)
    qkv, positions, cache, slots = _step(tokens, q_heads, kv_heads, head_dim)
    q_size, kv_size = q_heads * head_dim, kv_heads * head_dim
    q, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
    cos = rotary.cos_cache[positions].to(DTYPE).unsqueeze(1)
    sin = rotary.sin_cache[positions].to(DTYPE).unsqueeze(1)
    ref_q, ref_k, ref_v = rotary._rotate(q, cos, sin), rotary._rotate(k, cos, sin), v.clone()
    store = KVStore(v, cache, slots)
    if ON_GPU:
        assert rotary.rotate_and_store(positions, q, k, store)
    else:  # the layer keeps its torch path on a CPU: launch the kernel itself
        fused_ops.rotary_inplace(qkv[:, : q_size + kv_size], positions, rotary.cos_cache, rotary.sin_cache,
                                 head_dim, store)  # fmt: skip
    for out, ref in ((q, ref_q), (k, ref_k)):
        err = ((out.double() - ref.double()).abs().max() / ref.double().abs().max()).item()
        assert err < (1e-5 if not ON_GPU else 1e-2), err
    torch.testing.assert_close(v, ref_v, rtol=0, atol=0)
    _assert_stored_exactly(cache, slots, k, v)


@pytest.mark.parametrize(
    "head_dim,q_heads,kv_heads,tokens", [(32, 4, 2, 7)] + ([(128, 16, 8, 64)] if ON_GPU else [])
)
def test_qk_norm_rope_stores_the_normed_rotated_keys_and_the_values(head_dim, q_heads, kv_heads, tokens):
    rotary = RotaryEmbedding(head_dim, 256, 1000000.0).to(DEVICE)
    qkv, positions, cache, slots = _step(tokens, q_heads, kv_heads, head_dim)
    q_size, kv_size = q_heads * head_dim, kv_heads * head_dim
    unstored = qkv.clone()
    weights = [(torch.rand(head_dim, device=DEVICE) + 0.5).to(DTYPE) for _ in range(2)]
    args = (positions, rotary.cos_cache, rotary.sin_cache, *weights, 1e-6, head_dim, q_heads)
    qk_norm_rope_inplace(unstored[:, : q_size + kv_size], *args)  # the same launch without a store
    _, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
    qk_norm_rope_inplace(qkv[:, : q_size + kv_size], *args, kv_store=KVStore(v, cache, slots))
    torch.testing.assert_close(qkv, unstored, rtol=0, atol=0)  # q and k as without the store, v untouched
    _assert_stored_exactly(cache, slots, k, v)


def test_a_store_that_does_not_fit_the_launch_is_refused():
    qkv, positions, cache, slots = _step(5, 4, 2, 16)
    cos = torch.ones(256, 8, device=DEVICE)
    with pytest.raises(ValueError, match="K/V store"):  # values of 3 heads for a cache of 2
        fused_ops.rotary_inplace(qkv[:, :96], positions, cos, cos, 16, KVStore(qkv[:, :48], cache, slots))
    with pytest.raises(ValueError, match="K/V store"):  # one slot short
        fused_ops.rotary_inplace(qkv[:, :96], positions, cos, cos, 16, KVStore(qkv[:, 96:], cache, slots[:4]))
