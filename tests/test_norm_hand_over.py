"""An RMSNorm handed from one skinny linear to the next (``PendingNorm``): the producer adds the residual
and leaves the norm's row scale to the consumer, which must then compute what the linear of the norm's
output computes. On a GPU compiled, with PDL; on a machine without CUDA through Triton's interpreter
(float32, small shapes)."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
import torch.nn.functional as F

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

pytest.importorskip("triton", reason="triton is not installed")

from pagedllm.attention.triton.interpreter_compat import prepare_interpreter  # noqa: E402
from pagedllm.model.layers import RMSNorm, RowParallelLinear, fused_ops  # noqa: E402
from pagedllm.model.layers.pending_norm import PendingNorm  # noqa: E402
from pagedllm.model.layers.rotary import RotaryEmbedding  # noqa: E402
from pagedllm.model.layers.skinny_linear import (  # noqa: E402
    MAX_ROWS,
    SkinnyConfig,
    SkinnyRope,
    maybe_skinny_linear,
    maybe_skinny_linear_add_norm,
    maybe_skinny_rotary_linear,
    maybe_skinny_silu_and_mul,
    skinny_linear,
    skinny_linear_add_norm,
    tma_serves,
)

DEVICE = torch.device("cuda" if ON_GPU else "cpu")
DTYPE = torch.bfloat16 if ON_GPU else torch.float32
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU")
EPS = 1e-5


@pytest.fixture(autouse=True)
def _interpreter() -> None:
    prepare_interpreter()


def _rms_norm(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # float64, no rounding
    h = h.double()
    return weight.double() * h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS)


def _pending(h: torch.Tensor, weight: torch.Tensor, tile: int) -> PendingNorm:
    """What a producer with ``tile``-feature tiles hands over for ``h``, computed with torch."""
    h32 = h.float()
    parts = torch.stack([(t * t).sum(1) for t in h32.split(tile, dim=1)])
    return PendingNorm((h32 * weight.float()).to(h.dtype), parts.contiguous(), EPS)


@pytest.mark.parametrize(
    "m,n,k,config",
    [
        (5, 48, 64, SkinnyConfig(16, 16, 16)),  # rows short of a tile
        (20, 40, 128, SkinnyConfig(16, 32, 32, split_k=2)),  # the last split's epilogue; features short
        (33, 64, 128, SkinnyConfig(16, 16, 32, split_k=4)),  # three row tiles
        (33, 40, 128, SkinnyConfig(16, 32, 32, tma=True)),  # TMA boxes past the rows and features
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("late_residual", [False, True], ids=["residual-early", "residual-late"])
def test_producer_adds_the_residual_and_hands_over_the_weighted_sum_and_its_tiles_squares(
    m, n, k, config, with_bias, late_residual
):
    config = dataclasses.replace(config, late_residual=late_residual)  # loaded before or after the loop
    for _ in range(2):  # twice: the split tickets must be back at zero
        x = torch.randn(m, k, device=DEVICE).to(DTYPE)
        w = torch.randn(n, k, device=DEVICE).to(DTYPE)
        b = torch.randn(n, device=DEVICE).to(DTYPE) if with_bias else None
        residual = torch.randn(m, n, device=DEVICE).to(DTYPE)
        norm_w = torch.randn(n, device=DEVICE).to(DTYPE)
        h = F.linear(x.double(), w.double(), None if b is None else b.double()) + residual.double()
        pending = skinny_linear_add_norm(x, w, config, residual, norm_w, EPS, bias=b)
        tol = 1e-5 if not ON_GPU else 2e-2
        assert ((residual.double() - h).abs().max() / h.abs().max()).item() < tol  # the new residual stream
        weighted = h * norm_w.double()
        assert ((pending.weighted.double() - weighted).abs().max() / weighted.abs().max()).item() < tol
        tiles = [(t * t).sum(1) for t in h.split(config.block_n, dim=1)]
        assert pending.sumsq_parts.shape == (len(tiles), m)
        for got, want in zip(pending.sumsq_parts.double(), tiles, strict=True):
            assert ((got - want).abs().max() / want.abs().max()).item() < tol
        assert pending.eps == EPS


def _qkv_then_rotary(normed, w, b, positions, rotary, rotated):  # float64, RotaryEmbedding's torch rotation
    qkv = F.linear(normed, w, b)
    cos = rotary.cos_cache[positions].double().unsqueeze(1)
    sin = rotary.sin_cache[positions].double().unsqueeze(1)
    return torch.cat([rotary._rotate(qkv[:, :rotated], cos, sin), qkv[:, rotated:]], dim=1)


@pytest.mark.parametrize("kind", ["plain", "split", "gated", "rotated", "tma", "tma-gated", "tma-rotated"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_a_linear_of_a_pending_norm_is_the_linear_of_the_norms_output(kind, with_bias):
    m, k, head_dim = 20, 128, 32
    n = {"gated": 2 * 48, "rotated": 4 * head_dim}.get(kind.removeprefix("tma-"), 48)
    config = SkinnyConfig(16, 16, 32, split_k=2 if kind == "split" else 1, tma=kind.startswith("tma"))
    h = torch.randn(m, k, device=DEVICE).to(DTYPE) * 3
    norm_w = torch.randn(k, device=DEVICE).to(DTYPE)
    w = torch.randn(n, k, device=DEVICE).to(DTYPE)
    b = torch.randn(n, device=DEVICE).to(DTYPE) if with_bias else None
    pending = _pending(h, norm_w, tile=48)  # three producer tiles: 48, 48 and 32 features
    b64 = None if b is None else b.double()
    normed = _rms_norm(h, norm_w)
    if kind.endswith("gated"):
        out = skinny_linear(pending, w, config, bias=b, gated=True)
        gate, up = F.linear(normed, w.double(), b64).chunk(2, dim=-1)
        ref = F.silu(gate) * up
    elif kind.endswith("rotated"):
        rotary = RotaryEmbedding(head_dim, 256, 10000.0).to(DEVICE)
        positions = torch.randint(0, 256, (m,), device=DEVICE)
        rotated = 3 * head_dim  # two q heads and a k head; the last head (v) is not rotated
        rope = SkinnyRope(positions, rotary.cos_cache, rotary.sin_cache, head_dim, rotated)
        out = skinny_linear(pending, w, config, bias=b, rope=rope)
        ref = _qkv_then_rotary(normed, w.double(), b64, positions, rotary, rotated)
    else:
        out = skinny_linear(pending, w, config, bias=b)
        ref = F.linear(normed, w.double(), b64)
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < (1e-5 if not ON_GPU else 2e-2), err


def test_a_hand_over_chain_equals_the_linear_the_norm_and_the_next_linear():
    m, hidden, inner = 9, 64, 128
    x = torch.randn(m, inner, device=DEVICE).to(DTYPE)
    down = torch.randn(hidden, inner, device=DEVICE).to(DTYPE) * 0.1
    up = torch.randn(inner, hidden, device=DEVICE).to(DTYPE)
    norm = RMSNorm(hidden, EPS).to(DEVICE)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(hidden))
    residual = torch.randn(m, hidden, device=DEVICE).to(DTYPE)
    want_residual = F.linear(x.double(), down.double()) + residual.double()
    want = F.linear(_rms_norm(want_residual, norm.weight), up.double())
    pending = skinny_linear_add_norm(x, down, SkinnyConfig(16, 16, 32, split_k=2), residual, norm.weight, EPS)
    got = skinny_linear(pending, up, SkinnyConfig(16, 32, 32))
    tol = 1e-5 if not ON_GPU else 2e-2
    assert ((got.double() - want).abs().max() / want.abs().max()).item() < tol
    assert ((residual.double() - want_residual).abs().max() / want_residual.abs().max()).item() < tol


def test_materialize_gives_the_norms_output_to_a_consumer_that_cannot_take_the_hand_over():
    h = torch.randn(7, 80, dtype=torch.float64).float() * 2
    norm_w = torch.randn(80)
    got = _pending(h, norm_w, tile=32).materialize()
    want = _rms_norm(h, norm_w)
    assert ((got.double() - want).abs().max() / want.abs().max()).item() < 1e-6


def test_mismatched_hand_overs_are_refused_with_the_shapes_named():
    with pytest.raises(ValueError, match="do not fit together"):
        skinny_linear_add_norm(torch.ones(4, 64), torch.ones(32, 64), SkinnyConfig(16, 16, 16),
                               torch.ones(4, 31), torch.ones(32), EPS)  # fmt: skip
    pending = PendingNorm(torch.ones(4, 64), torch.ones(2, 5), EPS)  # sums for 5 rows, not 4
    with pytest.raises(ValueError, match="not \\[parts, 4\\]"):
        skinny_linear(pending, torch.ones(32, 64), SkinnyConfig(16, 16, 16))


def test_cpu_layers_keep_the_torch_path():
    layer = RowParallelLinear(32, 16)
    with torch.no_grad():
        layer.weight.normal_()
    norm = RMSNorm(16)
    x, residual = torch.randn(3, 32), torch.randn(3, 16)
    assert maybe_skinny_linear_add_norm(x, layer.weight, None, residual, norm.weight, EPS) is None
    normed, new_residual = layer.add_and_norm(x, residual, norm)
    assert isinstance(normed, torch.Tensor)
    torch.testing.assert_close(new_residual, F.linear(x, layer.weight) + residual)
    torch.testing.assert_close(normed, norm(new_residual))


# Each model's (hidden, intermediate, head_dim, query heads, KV heads): Llama-3.2-1B, Llama-3.1-8B,
# Qwen3-0.6B (its qkv is a plain launch: a per-head norm comes between it and rotary), Qwen2.5-0.5B.
MODEL_SHAPES = [(2048, 8192, 64, 32, 8), (4096, 14336, 128, 32, 8), (1024, 3072, 128, 16, 8),
                (896, 4864, 64, 14, 2)]  # fmt: skip


@needs_gpu
@pytest.mark.parametrize("rows", [1, 64, 100, 200])  # 100: the wide plans; 200: TMA plans
@pytest.mark.parametrize("hidden,inner,head_dim,q_heads,kv_heads", MODEL_SHAPES)
def test_every_model_hands_its_norms_over_as_close_as_the_unfused_layers(
    rows, hidden, inner, head_dim, q_heads, kv_heads
):
    """o_proj -> post-attention norm -> gate_up, and down -> next input norm -> qkv (rotated and plain),
    with the norms handed over, against the same launches with the norm kernel between them: the residual
    stream bit-equal, the outputs within a few bf16 roundings of each other."""
    bf16 = torch.bfloat16
    n_qkv = (q_heads + 2 * kv_heads) * head_dim
    rotary = RotaryEmbedding(head_dim, 4096, 500000.0).to("cuda")
    positions = torch.randint(0, 4096, (rows,), device="cuda")
    rope = SkinnyRope(
        positions, rotary.cos_cache, rotary.sin_cache, head_dim, (q_heads + kv_heads) * head_dim
    )
    cases = [  # (producer weight, consumer weight, consumer)
        (q_heads * head_dim, 2 * inner, lambda x, w: maybe_skinny_silu_and_mul(x, w, None)),
        (inner, n_qkv, lambda x, w: maybe_skinny_linear(x, w, None)),
    ]
    if rows <= MAX_ROWS:  # above, no rotated plan: the rotary kernel follows the plain product
        cases.append((inner, n_qkv, lambda x, w: maybe_skinny_rotary_linear(x, w, None, rope)))
    for k_in, n_out, consume in cases:
        if rows > MAX_ROWS and not tma_serves("producer", (hidden, k_in)):
            continue  # cuBLAS's above 128 rows: no hand-over
        if rows > MAX_ROWS and n_out != 2 * inner and not tma_serves("plain", (n_out, hidden)):
            continue  # the consumer is cuBLAS's: it materializes the norm
        x = torch.randn(rows, k_in, device="cuda", dtype=bf16)
        produce_w = torch.randn(hidden, k_in, device="cuda", dtype=bf16) * k_in**-0.5
        consume_w = torch.randn(n_out, hidden, device="cuda", dtype=bf16) * hidden**-0.5
        norm_w = (1 + 0.1 * torch.randn(hidden, device="cuda")).to(bf16)
        residual = torch.randn(rows, hidden, device="cuda", dtype=bf16)
        stream = residual.clone()
        pending = maybe_skinny_linear_add_norm(x, produce_w, None, stream, norm_w, EPS)
        assert pending is not None, "a bf16 step of <= 128 rows (or 256, small weights) hands its norm over"
        got = consume(pending, consume_w)
        unfused_stream = residual.clone()
        normed = fused_ops.rms_norm(maybe_skinny_linear(x, produce_w, None), norm_w, EPS, unfused_stream)
        want = consume(normed, consume_w)
        assert torch.equal(stream, unfused_stream), "the residual stream is added as the norm kernel adds it"
        scale = want.float().abs().max().item()
        assert (got.float() - want.float()).abs().max().item() <= 4 * scale * 2**-8
