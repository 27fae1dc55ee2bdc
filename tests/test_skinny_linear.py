"""The Triton weight-streaming linear of decode steps against ``F.linear``: on a GPU compiled (with
programmatic dependent launch, its weight prefetch, and inside a CUDA graph beside other PDL kernels),
on a machine without CUDA through Triton's interpreter (float32, small shapes)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

pytest.importorskip("triton", reason="triton is not installed")

from pagedllm import pdl  # noqa: E402
from pagedllm.attention import ReferenceAttentionBackend  # noqa: E402
from pagedllm.attention.triton.interpreter_compat import prepare_interpreter  # noqa: E402
from pagedllm.model.layers import fused_ops  # noqa: E402
from pagedllm.model.layers.rotary import RotaryEmbedding  # noqa: E402
from pagedllm.model.layers.skinny_linear import (  # noqa: E402
    MAX_ROWS,
    TMA_MAX_ROWS,
    SkinnyConfig,
    SkinnyRope,
    gated_skinny_config,
    maybe_skinny_linear,
    maybe_skinny_rotary_linear,
    maybe_skinny_silu_and_mul,
    plan_rows,
    rotary_skinny_config,
    skinny_config,
    skinny_linear,
    tma_config,
    tma_serves,
    wide_config,
)
from pagedllm.worker.kv_cache import new_kv_cache  # noqa: E402

DEVICE = torch.device("cuda" if ON_GPU else "cpu")
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _interpreter() -> None:
    prepare_interpreter()


@pytest.mark.parametrize(
    "m,n,k,config",
    [
        (5, 48, 64, SkinnyConfig(16, 16, 16)),  # rows and features short of a tile
        (20, 40, 128, SkinnyConfig(16, 32, 32, split_k=2)),  # the last split adds the partials
        (33, 64, 128, SkinnyConfig(16, 16, 32, split_k=4)),  # three row tiles share each weight tile
        (5, 48, 64, SkinnyConfig(16, 32, 16, tma=True)),  # TMA boxes past the rows and features: zeros
        (33, 64, 128, SkinnyConfig(16, 16, 32, split_k=2, tma=True)),
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_matches_f_linear_twice_in_a_row(m, n, k, config, with_bias):
    # Twice: the split tickets must be back at zero after a launch, or the second would add wrongly.
    dtype = torch.float32 if not ON_GPU else torch.bfloat16
    w = torch.randn(n, k, device=DEVICE).to(dtype)
    b = torch.randn(n, device=DEVICE).to(dtype) if with_bias else None
    for _ in range(2):
        x = torch.randn(m, k, device=DEVICE).to(dtype)
        out = torch.full((m, n), float("nan"), device=DEVICE, dtype=dtype)  # unwritten elements fail
        skinny_linear(x, w, config, bias=b, out=out)
        ref = F.linear(x.double(), w.double(), None if b is None else b.double())
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        assert err < (1e-5 if dtype == torch.float32 else 1e-2), err


def _silu_and_mul_reference(x, w, b):
    # float64, the activation as SiluAndMul's torch path computes it
    gate, up = F.linear(x.double(), w.double(), None if b is None else b.double()).chunk(2, dim=-1)
    return F.silu(gate) * up


@pytest.mark.parametrize(
    "m,d,k,config",
    [
        (5, 24, 64, SkinnyConfig(16, 16, 16)),  # rows and features short of a tile
        (33, 32, 128, SkinnyConfig(16, 16, 32)),  # three row tiles share each weight tile
        (5, 24, 64, SkinnyConfig(16, 16, 16, tma=True)),  # the last gate box reaches into the up rows
        (33, 32, 128, SkinnyConfig(16, 16, 32, tma=True)),
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_gated_launch_is_silu_of_the_gate_rows_times_the_up_rows(m, d, k, config, with_bias):
    dtype = torch.float32 if not ON_GPU else torch.bfloat16
    w = torch.randn(2 * d, k, device=DEVICE).to(dtype)  # [gate; up]
    b = torch.randn(2 * d, device=DEVICE).to(dtype) if with_bias else None
    x = torch.randn(m, k, device=DEVICE).to(dtype)
    out = torch.full((m, d), float("nan"), device=DEVICE, dtype=dtype)  # unwritten elements fail
    skinny_linear(x, w, config, bias=b, out=out, gated=True)
    ref = _silu_and_mul_reference(x, w, b)
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < (1e-5 if dtype == torch.float32 else 2e-2), err


def test_gated_launch_refuses_an_odd_weight_or_a_split_input():
    with pytest.raises(ValueError, match="gated product"):
        skinny_linear(torch.ones(2, 64), torch.ones(33, 64), SkinnyConfig(16, 16, 16), gated=True)
    with pytest.raises(ValueError, match="gated product"):
        skinny_linear(torch.ones(2, 64), torch.ones(32, 64), SkinnyConfig(16, 16, 16, split_k=2), gated=True)


def test_gated_plan_is_the_plain_plan_with_half_tiles_per_part():
    plain, gated = skinny_config(16384, 2048), gated_skinny_config(16384, 2048)  # the 1B's gate_up
    assert plain is not None and gated is not None
    assert gated.block_n * 2 == plain.block_n and (gated.block_k, gated.split_k) == (plain.block_k, 1)
    assert gated_skinny_config(2048, 2048) is None  # o_proj's plan splits its input


def test_wide_gated_plan_is_the_plain_wide_plan_of_the_output_features_with_both_tiles_in_shared_memory():
    gated = gated_skinny_config(16384, 2048, rows=128)  # the 1B's gate_up at 128 rows
    assert gated == wide_config(8192, 2048, 128, weight_tiles=2)
    assert gated is not None and gated.split_k == 1
    assert gated.num_stages * (gated.block_m + 2 * gated.block_n) * gated.block_k * 2 <= 200 * 1024


def _qkv_then_rotary(x, w, b, positions, rotary, q_heads, kv_heads):
    # The unfused layers in the model dtype: the projection, then RotaryEmbedding's torch path.
    hd = rotary.head_dim
    qkv = F.linear(x, w, b)
    q, k, v = qkv.split([q_heads * hd, kv_heads * hd, kv_heads * hd], dim=-1)
    cos = rotary.cos_cache[positions].to(x.dtype).unsqueeze(1)
    sin = rotary.sin_cache[positions].to(x.dtype).unsqueeze(1)
    return torch.cat([rotary._rotate(q, cos, sin), rotary._rotate(k, cos, sin), v], dim=-1)


@pytest.mark.parametrize(
    "m,head_dim,q_heads,kv_heads,config",
    [
        (5, 32, 3, 1, SkinnyConfig(16, 32, 16)),  # a program a head, rows short of a tile
        (20, 64, 4, 2, SkinnyConfig(16, 16, 32)),  # four programs a head, two row tiles
        (5, 32, 3, 1, SkinnyConfig(16, 32, 16, tma=True)),  # by TMA: a box and an accumulator a half
        (20, 64, 4, 2, SkinnyConfig(16, 16, 32, tma=True)),
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_rotated_launch_is_the_projection_then_rotary_on_q_and_k_only(
    m, head_dim, q_heads, kv_heads, config, with_bias
):
    dtype = torch.float32 if not ON_GPU else torch.bfloat16
    rotary = RotaryEmbedding(head_dim, 512, 10000.0).to(DEVICE)
    n, k = (q_heads + 2 * kv_heads) * head_dim, 64
    w = torch.randn(n, k, device=DEVICE).to(dtype)
    b = torch.randn(n, device=DEVICE).to(dtype) if with_bias else None
    x = torch.randn(m, k, device=DEVICE).to(dtype)
    positions = torch.randint(0, 512, (m,), device=DEVICE)
    rotated = (q_heads + kv_heads) * head_dim
    rope = SkinnyRope(positions, rotary.cos_cache, rotary.sin_cache, head_dim, rotated)
    out = torch.full((m, n), float("nan"), device=DEVICE, dtype=dtype)  # unwritten elements fail
    skinny_linear(x, w, config, bias=b, out=out, rope=rope)
    ref = _qkv_then_rotary(x.double(), w.double(), None if b is None else b.double(), positions, rotary,
                           q_heads, kv_heads)  # fmt: skip
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < (1e-5 if dtype == torch.float32 else 2e-2), err


@pytest.mark.parametrize(
    "config",
    [
        SkinnyConfig(16, 16, 32),  # four programs a head, by pointers
        SkinnyConfig(16, 16, 32, tma=True),  # by TMA: two half-head boxes a program
        SkinnyConfig(16, 32, 16, tma=True),  # two programs a head
    ],
)
def test_rotated_launch_stores_its_k_and_v_heads_at_the_step_slots_and_nowhere_else(config):
    """The cache then holds what attention's K/V write would store from the launch's own output: each
    row's k heads (rotated) and v heads at its slot, nothing for a slot of -1, every other slot untouched."""
    dtype = torch.float32 if not ON_GPU else torch.bfloat16
    m, head_dim, q_heads, kv_heads, k, block_size = 20, 64, 4, 2, 64, 4
    rotary = RotaryEmbedding(head_dim, 512, 10000.0).to(DEVICE)
    n, rotated = (q_heads + 2 * kv_heads) * head_dim, (q_heads + kv_heads) * head_dim
    w = torch.randn(n, k, device=DEVICE).to(dtype)
    x = torch.randn(m, k, device=DEVICE).to(dtype)
    positions = torch.randint(0, 512, (m,), device=DEVICE)
    num_blocks = 2 * m // block_size
    cache = new_kv_cache(num_blocks, block_size, kv_heads, head_dim, dtype, DEVICE).fill_(float("nan"))
    slots = torch.randperm(num_blocks * block_size, device=DEVICE)[:m]
    slots[m // 2] = -1  # a padding row
    rope = SkinnyRope(positions, rotary.cos_cache, rotary.sin_cache, head_dim, rotated, cache, slots)
    out = skinny_linear(x, w, config, rope=rope)
    expected = torch.full_like(cache, float("nan"))
    k_heads = out[:, q_heads * head_dim : rotated].reshape(m, kv_heads, head_dim)
    v_heads = out[:, rotated:].reshape(m, kv_heads, head_dim)
    ReferenceAttentionBackend().write_kv(k_heads, v_heads, expected, slots)
    assert torch.equal(cache.isnan(), expected.isnan()), (
        "a slot the step does not name was written, or one not"
    )
    assert torch.equal(cache.nan_to_num(), expected.nan_to_num())


def test_rotated_launch_refuses_a_kv_destination_that_does_not_hold_its_heads():
    x, w = torch.ones(4, 64, device=DEVICE), torch.ones(128, 64, device=DEVICE)  # q, k, v heads of 32
    cache = torch.zeros(2, 4, 4, 2, 32, device=DEVICE)  # two KV heads of 32: one too many
    rows = torch.zeros(4, dtype=torch.long, device=DEVICE)
    table = torch.ones(8, 16, device=DEVICE)
    rope = SkinnyRope(rows, table, table, 32, 96, cache, rows)
    with pytest.raises(ValueError, match="does not fit"):
        skinny_linear(x, w, SkinnyConfig(16, 32, 16), rope=rope)


def test_rotated_launch_refuses_heads_its_tiles_do_not_fit():
    rope = SkinnyRope(torch.zeros(2, dtype=torch.long), torch.ones(8, 8), torch.ones(8, 8), 16, 32)
    with pytest.raises(ValueError, match="rotated product"):  # half a head (8) is less than half a tile
        skinny_linear(torch.ones(2, 64), torch.ones(48, 64), SkinnyConfig(16, 32, 16), rope=rope)
    assert rotary_skinny_config(3072, 2048, 64) is not None  # the 1B's qkv
    assert rotary_skinny_config(1152, 896, 64) is not None  # Qwen2.5-0.5B's: 16-wide tiles
    assert rotary_skinny_config(2048, 2048, 64) is None  # a split input


def test_a_k_that_splits_into_no_whole_tiles_is_refused():
    with pytest.raises(ValueError, match="multiple of split_k"):
        skinny_linear(torch.ones(2, 48), torch.ones(16, 48), SkinnyConfig(16, 16, 32, split_k=1))
    assert skinny_config(2048, 1000) is None


def test_config_rule_picks_the_sweeps_fastest_tiles_for_the_1b_linears():
    # benchmarks/gpu/session11_linears.py, H100, 64 rows: the fastest per linear
    def plan(n, k):
        c = skinny_config(n, k)
        assert c is not None
        return c.block_m, c.block_n, c.block_k, c.split_k, c.num_warps, c.num_stages

    assert plan(3072, 2048) == (64, 32, 256, 1, 4, 4)  # qkv
    assert plan(2048, 2048) == (64, 32, 256, 2, 4, 4)  # o_proj
    assert plan(16384, 2048) == (64, 128, 128, 1, 8, 4)  # gate_up
    assert plan(2048, 8192) == (64, 32, 256, 2, 4, 4)  # down
    small = skinny_config(1024, 1024)  # few features: split the input for enough programs
    assert small is not None and 1024 // small.block_n * small.split_k >= 96


def test_config_rule_gives_qwen3_gate_up_one_wave_of_64_feature_tiles():
    # benchmarks/gpu/session14_linears.py, H100, 64 rows: 96 programs of 64 features beat 192 of 32
    # (two waves at ~200 KB of shared memory a program); qkv stays on 128 programs of 32
    plan = skinny_config(6144, 1024)
    assert plan == SkinnyConfig(64, 64, 128, split_k=1, num_warps=4, num_stages=4, tma=True)
    gated = SkinnyConfig(64, 32, 128, split_k=1, num_warps=4, num_stages=4, tma=True)
    assert gated_skinny_config(6144, 1024) == gated
    assert skinny_config(4096, 1024) == SkinnyConfig(
        64, 32, 256, split_k=1, num_warps=4, num_stages=4, tma=True
    )


# (N, K) of every linear of the Llama-3.2-1B, Llama-3.1-8B, Qwen3-0.6B and Qwen2.5-0.5B shapes
MODEL_LINEARS = [
    (3072, 2048), (2048, 2048), (16384, 2048), (2048, 8192),  # Llama-3.2-1B
    (6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336),  # Llama-3.1-8B
    (4096, 1024), (1024, 2048), (6144, 1024), (1024, 3072),  # Qwen3-0.6B
    (1152, 896), (896, 896), (9728, 896), (896, 4864),  # Qwen2.5-0.5B
]  # fmt: skip
# (2 x intermediate, hidden) of the gate_up projections of the shapes above
MODEL_GATE_UPS = [(16384, 2048), (28672, 4096), (6144, 1024), (9728, 896)]


@pytest.mark.parametrize("n,k", MODEL_LINEARS)
@pytest.mark.parametrize("smem_budget", [200 * 1024, 83 * 1024])  # H100; consumer Blackwell's 99 KB less 16
def test_every_model_linear_gets_a_plan_of_whole_tiles_within_the_budget(n, k, smem_budget):
    for rows in (64, 128):
        c = skinny_config(n, k, smem_budget, rows)
        assert c is not None
        assert k % (c.split_k * c.block_k) == 0
        assert c.num_stages * (c.block_m + c.block_n) * c.block_k * 2 <= smem_budget


@pytest.mark.parametrize("n,k", MODEL_GATE_UPS)
@pytest.mark.parametrize("rows", [64, 128])
def test_every_model_gate_up_gets_a_gated_plan_within_the_budget(n, k, rows):
    c = gated_skinny_config(n, k, rows=rows)
    assert c is not None and c.split_k == 1 and (n // 2) % c.block_n == 0
    assert c.num_stages * (c.block_m + 2 * c.block_n) * c.block_k * 2 <= 200 * 1024


def test_wide_rule_picks_tiles_near_the_128_row_sweeps_fastest():
    # benchmarks/gpu/session15_linears256.py, H100, 128 rows (block_m, block_n, block_k, split_k, warps,
    # stages): the fastest per linear or within 0.3 us of it (one not timed, said so)
    def plan(n, k, gated=False):
        c = gated_skinny_config(n, k, rows=128) if gated else skinny_config(n, k, rows=128)
        assert c is not None and c.late_residual == (c.split_k == 1)
        return c.block_m, c.block_n, c.block_k, c.split_k, c.num_warps, c.num_stages

    # Llama-3.2-1B: 64-row tiles, split for 96 programs; 128-row tiles where the outputs alone make them
    assert plan(3072, 2048) == (64, 64, 128, 1, 4, 5)  # qkv, 8.42 us (the best)
    assert plan(2048, 2048) == (64, 64, 128, 2, 4, 5)  # o_proj, 7.40 (best 7.26 at 4 stages)
    assert plan(16384, 2048, gated=True) == (128, 64, 128, 1, 8, 3)  # gate_up gated, 28.02 (the best)
    assert plan(2048, 8192) == (64, 64, 128, 2, 4, 5)  # down, 18.22 (the best)
    # Qwen3-0.6B
    assert plan(4096, 1024) == (64, 64, 128, 1, 4, 5)  # qkv, 5.32 (the best)
    assert plan(1024, 2048) == (
        64,
        64,
        128,
        4,
        4,
        5,
    )  # o_proj, not timed (8 warps, 4 stages: 6.37; best 6.22)
    assert plan(6144, 1024, gated=True) == (64, 64, 64, 1, 4, 5)  # gate_up gated, 7.51 (the best)
    assert plan(1024, 3072) == (64, 64, 128, 4, 4, 5)  # down, 7.26 (best 7.14 at 8 warps)
    # Llama-3.1-8B: a long input halved for 128-row tiles (down)
    assert plan(6144, 4096) == (128, 64, 128, 1, 8, 4)  # qkv, 22.91 (the best)
    assert plan(4096, 4096) == (64, 64, 128, 1, 4, 5)  # o_proj, 16.13 (the best)
    assert plan(28672, 4096, gated=True) == (128, 64, 128, 1, 8, 3)  # gate_up gated, 90.17 (best 89.90)
    assert plan(4096, 14336) == (128, 64, 128, 2, 8, 4)  # down, 49.21 (the best)
    # A step plans for its 64-row band: one plan up to 64 rows, then one per band
    assert [plan_rows(r) for r in (1, 64, 65, 128, 129, 200, 256)] == [64, 64, 128, 128, 192, 256, 256]
    assert MAX_ROWS == 128  # from 192 rows on the wide plans lose to cuBLAS (session15_forms.py)


def test_plans_up_to_64_rows_load_their_tiles_by_tma_and_wider_ones_by_pointers():
    # session 26, H100: TMA took the 1B's and Qwen3-0.6B's 64-row steps 1.1-2.4% faster, and Qwen3's
    # 128-row step 2% slower
    for n, k in [(3072, 2048), (2048, 8192), (4096, 1024)]:
        narrow, wide = skinny_config(n, k, rows=64), skinny_config(n, k, rows=128)
        assert narrow is not None and narrow.tma
        assert wide is not None and not wide.tma
    gated = gated_skinny_config(16384, 2048, rows=64)
    assert gated is not None and gated.tma


def test_steps_of_129_to_256_rows_take_tma_plans_for_the_gated_product_and_small_weights():
    # session 28, H100 whole steps at 192 and 256 rows: the gated product by TMA faster on every model;
    # every product by TMA faster for Qwen3-0.6B; the 1B's down (16.8M elements) slower as a producer
    assert TMA_MAX_ROWS == 256
    for gate_up in MODEL_GATE_UPS:
        assert tma_serves("gated", gate_up)  # the 8B's 117M elements too
    assert tma_serves("plain", (3072, 2048)) and tma_serves("producer", (2048, 2048))  # the 1B's qkv, o_proj
    assert not tma_serves("producer", (2048, 8192))  # the 1B's down: cuBLAS
    assert not tma_serves("plain", (6144, 4096)) and not tma_serves("producer", (4096, 4096))  # the 8B's
    for qwen3 in [(4096, 1024), (1024, 2048), (1024, 3072)]:
        assert tma_serves("plain", qwen3) and tma_serves("producer", qwen3)
    # the rotated qkv in 64-feature tiles was slower than cuBLAS and the rotary kernel
    assert not tma_serves("rotated", (3072, 2048))


def test_tma_rule_picks_the_256_row_sweeps_fastest_tiles():
    # benchmarks/results/session26/call1-tma-*.json: the H100 sweep at 256 rows, us (cuBLAS)
    def plan(n, k, gated=False):
        c = gated_skinny_config(n, k, rows=256) if gated else skinny_config(n, k, rows=256)
        assert c is not None and c.tma and c.split_k == 1
        assert c == (tma_config(n // 2, k, 256, weight_tiles=2) if gated else tma_config(n, k, 256))
        return c.block_m, c.block_n, c.block_k, c.num_warps, c.num_stages

    assert plan(16384, 2048, gated=True) == (128, 128, 64, 8, 4)  # the 1B's gate_up, 32.74 (36.96 with SiLU)
    assert plan(3072, 2048) == (64, 128, 128, 4, 4)  # the 1B's qkv, 9.40 (8.63)
    assert plan(2048, 2048) == (64, 64, 128, 4, 6)  # o_proj, 6.88 (6.74)
    assert plan(4096, 1024) == (64, 128, 128, 4, 4)  # Qwen3-0.6B's qkv, 6.73 (6.27)
    assert plan(1024, 2048) == (64, 64, 128, 4, 6)  # o_proj, 6.09 (6.31)
    assert plan(1024, 3072) == (64, 64, 128, 4, 6)  # down, 7.93 (8.75)
    assert plan(6144, 1024, gated=True) == (64, 64, 64, 4, 4)  # gated gate_up, 9.64 (9.94 with SiLU)
    # 129-256 rows take these plans; 65-128 the pointer plans of the sessions 9-15 sweeps
    assert skinny_config(3072, 2048, rows=192) == tma_config(3072, 2048, 192)
    # 128-feature tiles hold a half-tile of 64 features, more than half a 64-wide head: no rotated plan
    assert rotary_skinny_config(3072, 2048, 64, rows=256) is None


def test_every_model_gate_up_gets_a_tma_plan_within_the_budget_at_256_rows():
    for n, k in MODEL_GATE_UPS:
        c = gated_skinny_config(n, k, rows=256)
        assert c is not None and c.tma and c.split_k == 1 and (n // 2) % c.block_n == 0
        assert c.num_stages * (c.block_m + 2 * c.block_n) * c.block_k * 2 <= 200 * 1024


def test_a_tma_plan_on_a_misaligned_input_loads_its_tiles_by_pointers():
    dtype = torch.float32 if not ON_GPU else torch.bfloat16
    w = torch.randn(48, 64, device=DEVICE).to(dtype)
    x = torch.randn(5 * 65 + 1, device=DEVICE).to(dtype)[1:].view(5, 65)[:, :64]  # rows 65 apart, offset
    out = skinny_linear(x, w, SkinnyConfig(16, 32, 16, tma=True))
    ref = F.linear(x.double(), w.double())
    assert ((out.double() - ref).abs().max() / ref.abs().max()).item() < (1e-5 if not ON_GPU else 1e-2)


def test_cpu_tensors_keep_the_torch_path():
    assert not pdl.enabled(torch.device("cpu"))
    assert maybe_skinny_linear(torch.ones(4, 64), torch.ones(32, 64), None) is None
    assert maybe_skinny_silu_and_mul(torch.ones(4, 64), torch.ones(32, 64), None) is None
    rope = SkinnyRope(torch.zeros(4, dtype=torch.long), torch.ones(8, 16), torch.ones(8, 16), 32, 32)
    assert maybe_skinny_rotary_linear(torch.ones(4, 64), torch.ones(64, 64), None, rope) is None


@needs_gpu
@pytest.mark.parametrize("rows", [1, 64, 100, 200])  # 100: a wide plan, its last row tile cut short; 200: TMA
@pytest.mark.parametrize("n,k", MODEL_GATE_UPS)
def test_every_model_gate_up_fuses_its_activation_and_matches_the_unfused_layers(rows, n, k):
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
    x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    out = maybe_skinny_silu_and_mul(x, w, None)
    assert out is not None, "a bf16 step of <= 256 rows on an H100 takes the gated Triton path"
    plain = maybe_skinny_linear(x, w, None)
    unfused = fused_ops.silu_and_mul(plain if plain is not None else F.linear(x, w))
    scale = unfused.float().abs().max().item()
    assert (out.float() - unfused.float()).abs().max().item() <= 2 * scale * 2**-8
    ref = _silu_and_mul_reference(x, w, None)
    assert ((out.double() - ref).abs().max() / ref.abs().max()).item() < 2e-2


# (head_dim, query heads, KV heads, hidden) of the qkv projections the rotated launch serves
MODEL_QKVS = [(64, 32, 8, 2048), (128, 32, 8, 4096), (64, 14, 2, 896)]  # Llama-3.2-1B, 3.1-8B, Qwen2.5-0.5B


@needs_gpu
@pytest.mark.parametrize("rows", [1, 64, 100, 200])
@pytest.mark.parametrize("head_dim,q_heads,kv_heads,k", MODEL_QKVS)
def test_every_model_qkv_fuses_its_rotary_and_matches_the_unfused_layers(
    rows, head_dim, q_heads, kv_heads, k
):
    rotary = RotaryEmbedding(head_dim, 4096, 500000.0).to("cuda")
    n, rotated = (q_heads + 2 * kv_heads) * head_dim, (q_heads + kv_heads) * head_dim
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
    x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    positions = torch.randint(0, 4096, (rows,), device="cuda")
    out = maybe_skinny_rotary_linear(x, w, None, SkinnyRope(positions, rotary.cos_cache, rotary.sin_cache,
                                                            head_dim, rotated))  # fmt: skip
    if rows > MAX_ROWS:
        assert out is None, "above 128 rows the rotary kernel follows the product"
        return
    assert out is not None, "a bf16 step of <= 128 rows on an H100 takes the rotated Triton path"
    unfused = maybe_skinny_linear(x, w, None)
    q, kk = unfused[:, : q_heads * head_dim], unfused[:, q_heads * head_dim : rotated]
    rotary(positions, q, kk)  # the Triton rotary kernel, in place
    assert (out.float() - unfused.float()).abs().max().item() <= unfused.float().abs().max().item() * 2**-7
    assert torch.equal(out[:, rotated:], unfused[:, rotated:])  # v is not rotated


@needs_gpu
@pytest.mark.parametrize("rows", [1, 64, 100, 200])
@pytest.mark.parametrize("n,k", MODEL_LINEARS)
def test_every_model_linear_compiles_and_matches_cublas_in_bf16(rows, n, k):
    with_bias = (n, k) == (1152, 896)  # Qwen2.5's qkv projection has a bias
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
    b = torch.randn(n, device="cuda", dtype=torch.bfloat16) if with_bias else None
    x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    out = maybe_skinny_linear(x, w, b)
    if rows > MAX_ROWS and not tma_serves("plain", (n, k)):
        assert out is None, "above 128 rows a large weight is cuBLAS's"
        return
    assert out is not None, "a bf16 step of <= 128 rows, or <= 256 with a small weight, takes the Triton path"
    ref = F.linear(x.float(), w.float(), None if b is None else b.float())
    err = ((out.float() - ref).abs().max() / ref.abs().max()).item()
    assert err < 1e-2, err
    too_many = torch.randn(TMA_MAX_ROWS + 1, k, device="cuda", dtype=torch.bfloat16)
    assert maybe_skinny_linear(too_many, w, b) is None


@needs_gpu
def test_a_graph_of_pdl_kernels_reads_each_output_only_after_it_is_written():
    # Norm -> up linear -> down linear (split over its 8k inputs) ..., each launched with PDL and each
    # consuming the previous output: a kernel that read before its predecessor finished would see the
    # previous replay's values, computed from another input.
    if not pdl.enabled(torch.device("cuda")):
        pytest.skip("PDL needs compute capability 9.0+")
    torch.manual_seed(0)
    n, f = 2048, 8192
    ups = [torch.randn(f, n, device="cuda", dtype=torch.bfloat16) * n**-0.5 for _ in range(4)]
    downs = [torch.randn(n, f, device="cuda", dtype=torch.bfloat16) * f**-0.5 for _ in range(4)]
    norm_w = torch.ones(n, device="cuda", dtype=torch.bfloat16)
    x = torch.randn(64, n, device="cuda", dtype=torch.bfloat16)
    up_config, down_config = skinny_config(f, n), skinny_config(n, f)
    assert up_config is not None and down_config is not None and down_config.split_k > 1

    def chain(x: torch.Tensor) -> torch.Tensor:
        for up, down in zip(ups, downs, strict=True):
            h = skinny_linear(fused_ops.rms_norm(x, norm_w, 1e-5), up, up_config)
            x = skinny_linear(h, down, down_config)
        return x

    def reference(x: torch.Tensor) -> torch.Tensor:
        for up, down in zip(ups, downs, strict=True):
            x = F.linear(F.linear(fused_ops.rms_norm(x, norm_w, 1e-5), up), down)
        return x

    chain(x)  # compile before capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = chain(x)
    for _ in range(3):
        x.copy_(torch.randn_like(x))
        out.fill_(float("nan"))
        graph.replay()
        ref = reference(x)
        err = ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        assert err < 3e-2, err


@needs_gpu
def test_a_graph_captured_before_the_workspace_grows_keeps_working():
    # A split-K graph of 8 rows, then an eager split-K step of a wider linear that outgrows the workspace,
    # then other tensors take freed memory: the graph must still write its partials to its own buffer.
    torch.manual_seed(0)
    down = torch.randn(2048, 8192, device="cuda", dtype=torch.bfloat16) * 0.01
    config = skinny_config(2048, 8192)
    assert config is not None and config.split_k > 1
    x = torch.randn(8, 8192, device="cuda", dtype=torch.bfloat16)
    skinny_linear(x, down, config)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = skinny_linear(x, down, config)
    wide = torch.randn(16384, 16384, device="cuda", dtype=torch.bfloat16) * 0.01
    wide_config = SkinnyConfig(64, 64, 128, split_k=8, num_stages=3)
    skinny_linear(torch.randn(64, 16384, device="cuda", dtype=torch.bfloat16), wide, wide_config)
    # The size of the first workspace's partials (2 splits x 64 rows x 2048): reuses it if it was freed.
    junk = [torch.full((1 << 18,), 7.0, device="cuda") for _ in range(64)]
    graph.replay()
    ref = F.linear(x.float(), down.float())
    err = ((out.float() - ref).abs().max() / ref.abs().max()).item()
    assert err < 1e-2, err
    assert all(bool((j == 7.0).all()) for j in junk), "the graph wrote into memory it no longer owns"
