"""The Triton kernels against the reference backend computed in float64, on ragged paged batches.

On a machine without CUDA the kernels run through Triton's interpreter (``TRITON_INTERPRET=1``) in
float32/float16 on small shapes; on a GPU the same tests run compiled, at larger shapes and in bfloat16
too. Every check draws fresh random inputs, poisons outputs and every unused cache slot with NaN (so an
unwritten output or a read past a sequence's context fails), and scatters blocks through the pool.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random

import pytest
import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    # NOTE: read when the kernels are decorated, i.e. when pagedllm.attention.triton is first imported.
    # It stays set for the process; on a machine without CUDA only the interpreter can run Triton anyway.
    os.environ.setdefault("TRITON_INTERPRET", "1")

triton = pytest.importorskip(
    "triton", reason="triton is not installed (pip install triton; CPU runs interpret)"
)

from pagedllm.attention import AttentionMetadata, ReferenceAttentionBackend  # noqa: E402
from pagedllm.attention.triton import (  # noqa: E402
    TritonAttentionBackend,
    paged_decode_attention,
    paged_prefill_attention,
    write_kv_cache,
)
from pagedllm.attention.triton import decode as triton_decode  # noqa: E402
from pagedllm.attention.triton.decode import DecodeLaunch  # noqa: E402
from pagedllm.attention.triton.prefill import PrefillLaunch, tma_applies  # noqa: E402
from pagedllm.worker.kv_cache import new_kv_cache  # noqa: E402

DEVICE = torch.device("cuda" if ON_GPU else "cpu")
TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1e-2}
# The interpreter does not do bfloat16 tl.dot correctly: bf16 is checked on the GPU only.
DTYPES = [torch.float32, torch.float16, torch.bfloat16] if ON_GPU else [torch.float32, torch.float16]


# -- batches ---------------------------------------------------------------------------------------


def make_paged_batch(
    seqs: list[tuple[int, int]],
    block_size: int,
    num_kv_heads: int,
    head_dim: int,
    dtype: torch.dtype,
    *,
    fill_new: bool = True,
    token_major: bool = False,
) -> tuple[torch.Tensor, AttentionMetadata]:
    """seqs: (context length after the step, new tokens). Blocks are scattered at random; every slot no
    sequence owns is NaN, and so is the block that pads the block tables. With ``fill_new=False`` the new
    tokens' slots stay NaN too (the write kernel must fill them). The cache is laid out as the engine's
    CUDA cache (``new_kv_cache``, head-major) even on the CPU, where the engine keeps token-major, or
    with ``token_major`` contiguous in its logical order."""
    num_blocks = sum(-(-ctx // block_size) for ctx, _ in seqs) + 2
    cache = new_kv_cache(
        num_blocks, block_size, num_kv_heads, head_dim, dtype, "cpu", head_major=not token_major
    )
    cache.fill_(float("nan"))
    ids = torch.randperm(num_blocks).tolist()
    pad_block = ids.pop()
    tables, slots, starts, filled = [], [], [0], []
    for ctx, query_len in seqs:
        table = [ids.pop() for _ in range(-(-ctx // block_size))]
        tables.append(table)
        positions = range(ctx if fill_new else ctx - query_len)
        filled += [table[p // block_size] * block_size + p % block_size for p in positions]
        slots += [table[p // block_size] * block_size + p % block_size for p in range(ctx - query_len, ctx)]
        starts.append(starts[-1] + query_len)
    slot = torch.tensor(filled, dtype=torch.int64)
    cache[:, slot // block_size, slot % block_size] = torch.randn(2, len(filled), num_kv_heads, head_dim).to(
        dtype
    )
    width = max(len(t) for t in tables) + 1
    block_tables = torch.full((len(seqs), width), pad_block, dtype=torch.int32)
    for i, table in enumerate(tables):
        block_tables[i, : len(table)] = torch.tensor(table, dtype=torch.int32)
    lens = [ctx for ctx, _ in seqs]
    metadata = AttentionMetadata(
        slot_mapping=torch.tensor(slots, dtype=torch.int64, device=DEVICE),
        block_tables=block_tables.to(DEVICE),
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=DEVICE),
        seq_lens=torch.tensor(lens, dtype=torch.int32, device=DEVICE),
        max_query_len=max(q for _, q in seqs),
        max_seq_len=max(lens),
        query_start_loc_host=starts,
        seq_lens_host=lens,
    )
    return cache.to(DEVICE), metadata


def make_step(
    seqs: list[tuple[int, int]], block_size: int, layout: tuple[int, int, int], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A paged batch whose new tokens' cache slots stay NaN, the step's (query, key, value) as views into
    one fused QKV output (as the models hand them over), and ``filled``: the cache with that K/V written."""
    num_heads, num_kv_heads, head_dim = layout
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype, fill_new=False)
    num_tokens = metadata.query_start_loc_host[-1]
    qkv = torch.randn(num_tokens, num_heads + 2 * num_kv_heads, head_dim, dtype=dtype, device=DEVICE)
    query, key, value = qkv.split([num_heads, num_kv_heads, num_kv_heads], dim=1)
    filled = cache.clone()
    ReferenceAttentionBackend().write_kv(key, value, filled, metadata.slot_mapping)
    return cache, filled, metadata, (query, key, value)


def reference_attention(
    query: torch.Tensor, cache: torch.Tensor, metadata: AttentionMetadata, scale: float
) -> torch.Tensor:
    """The reference backend in float64, on the inputs' device."""
    return ReferenceAttentionBackend().attend(query.double(), cache.double(), metadata, scale)


def assert_close(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    out = out.double()
    assert not out.isnan().any(), f"{int(out.isnan().sum())} NaN outputs (unwritten or poisoned reads)"
    error = ((out - ref).norm() / ref.norm()).item()
    assert error < TOLERANCE[dtype], f"relative error {error:.2e} >= {TOLERANCE[dtype]:.0e} for {dtype}"


def ragged_decodes(num_seqs: int, max_len: int, block_size: int) -> list[tuple[int, int]]:
    """Lengths 1 .. max_len, with a length-1 sequence and one on a block boundary among them."""
    lens = [1, block_size, max_len] + [random.randint(1, max_len) for _ in range(num_seqs - 3)]
    random.shuffle(lens)
    return [(n, 1) for n in lens]


# (block_size, num_heads, num_kv_heads, head_dim): GQA ratios 1..8, head dims incl. one not a power of 2.
if ON_GPU:
    DECODE_SHAPES = [
        (16, 32, 8, 128),
        (8, 14, 2, 64),
        (256, 16, 2, 256),
        (32, 8, 8, 128),
        (64, 28, 4, 64),
        (128, 12, 2, 96),
    ]
    DECODE_MAX_LEN, NUM_DECODES = 16384, 24
else:
    DECODE_SHAPES = [(16, 8, 2, 32), (8, 2, 2, 64), (64, 16, 2, 48), (128, 6, 1, 16)]
    DECODE_MAX_LEN, NUM_DECODES = 260, 5
# None: chosen per batch (one split on the interpreter's pretend 4 SMs); 1: none; 7: more splits than
# the short contexts can use, so some splits are empty.
SPLIT_COUNTS = (None, 1, 7) if ON_GPU else (None, 7)


# -- KV write --------------------------------------------------------------------------------------


@pytest.mark.parametrize("token_major", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("block_size", "num_kv_heads", "head_dim"), [(16, 2, 32), (8, 3, 24), (32, 1, 64)])
def test_write_kv_fills_exactly_the_reference_slots_and_skips_padding(
    dtype, block_size, num_kv_heads, head_dim, token_major
):
    num_blocks, num_tokens = 7, 40
    slots = torch.randperm(num_blocks * block_size)[:num_tokens]
    slots[torch.randperm(num_tokens)[:5]] = -1  # padding tokens
    key = torch.randn(num_tokens, num_kv_heads, head_dim, dtype=dtype)
    # A strided value (a view into a wider tensor), as a fused projection hands it over.
    value = torch.randn(num_tokens, num_kv_heads, 2 * head_dim, dtype=dtype)[..., :head_dim]
    expected = torch.full((2, num_blocks, block_size, num_kv_heads, head_dim), float("nan"), dtype=dtype)
    ReferenceAttentionBackend().write_kv(key, value, expected, slots)
    cache = new_kv_cache(
        num_blocks, block_size, num_kv_heads, head_dim, dtype, DEVICE, head_major=not token_major
    ).fill_(float("nan"))
    write_kv_cache(key.to(DEVICE), value.to(DEVICE), cache, slots.to(DEVICE))
    assert torch.equal(cache.cpu().isnan(), expected.isnan())
    assert torch.equal(cache.cpu().nan_to_num(), expected.nan_to_num())


# -- decode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("block_size", "num_heads", "num_kv_heads", "head_dim"), DECODE_SHAPES)
def test_decode_matches_reference_on_ragged_contexts(dtype, block_size, num_heads, num_kv_heads, head_dim):
    seqs = ragged_decodes(NUM_DECODES, DECODE_MAX_LEN, block_size)
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
    query = torch.randn(len(seqs), num_heads, head_dim, dtype=dtype, device=DEVICE)
    scale = head_dim**-0.5
    ref = reference_attention(query, cache, metadata, scale)
    for num_splits in SPLIT_COUNTS:
        # fused: the last split merges (counter); not fused: the second pass merges.
        for fused in (None,) if num_splits in (None, 1) else (True, False):
            out = torch.full_like(query, float("nan"))
            paged_decode_attention(
                out,
                query,
                cache,
                metadata.block_tables,
                metadata.seq_lens,
                metadata.query_start_loc,
                metadata.max_seq_len,
                scale,
                num_splits=num_splits,
                launch=DecodeLaunch(fused_merge=fused),
            )
            assert_close(out, ref, dtype)
    assert_counters_zero(query.device)


def test_decode_and_prefill_match_reference_on_a_token_major_cache_too():
    """The kernels read the cache through its strides: the engine's head-major CUDA storage (every
    other test) and a cache contiguous in its logical order give the reference's outputs alike."""
    block_size, num_heads, num_kv_heads, head_dim = 16, 4, 2, 32
    seqs = ragged_decodes(NUM_DECODES, DECODE_MAX_LEN, block_size)
    cache, metadata = make_paged_batch(
        seqs, block_size, num_kv_heads, head_dim, torch.float32, token_major=True
    )
    assert cache.is_contiguous()
    query = torch.randn(len(seqs), num_heads, head_dim, device=DEVICE)
    assert_decode_matches_reference(query, cache, metadata, DecodeLaunch(), ((None, None), (3, True)))
    seqs = random.sample(MIXED_SEQS, len(MIXED_SEQS))
    cache, metadata = make_paged_batch(
        seqs, block_size, num_kv_heads, head_dim, torch.float32, token_major=True
    )
    query = torch.randn(metadata.query_start_loc_host[-1], num_heads, head_dim, device=DEVICE)
    out = torch.full_like(query, float("nan"))
    paged_prefill_attention(
        out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc, 0.2
    )
    assert_close(out, reference_attention(query, cache, metadata, 0.2), torch.float32)


def assert_decode_matches_reference(
    query: torch.Tensor,
    cache: torch.Tensor,
    metadata: AttentionMetadata,
    launch: DecodeLaunch,
    plans: tuple[tuple[int, bool | None], ...],
) -> None:
    """The decode kernel with ``launch`` at each (splits, fused merge) of ``plans`` against the reference;
    the fused merge's counters back at zero afterwards."""
    scale = 0.15
    ref = reference_attention(query, cache, metadata, scale)
    for num_splits, fused in plans:
        out = torch.full_like(query, float("nan"))
        paged_decode_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            metadata.max_seq_len, scale, num_splits=num_splits,
            launch=dataclasses.replace(launch, fused_merge=fused),
        )  # fmt: skip
        assert_close(out, ref, query.dtype)
    assert_counters_zero(query.device)


# (block_size, num_heads, num_kv_heads, head_dim, kv_heads_per_program): several KV heads per program, their
# dims side by side (the Qwen2.5-0.5B layout reads a token's K row in one piece); a head dim not a power of 2.
KV_BLOCK_SHAPES = (
    [(16, 14, 2, 64, 2), (8, 16, 4, 64, 2), (16, 32, 8, 64, 2), (32, 12, 4, 96, 4), (16, 8, 8, 32, 8)]
    if ON_GPU
    else [(16, 6, 2, 32, 2), (8, 8, 4, 24, 2), (16, 4, 4, 16, 4)]
)


@pytest.mark.parametrize(
    ("block_size", "num_heads", "num_kv_heads", "head_dim", "per_program"), KV_BLOCK_SHAPES
)
def test_decode_with_several_kv_heads_per_program_matches_reference(
    block_size, num_heads, num_kv_heads, head_dim, per_program
):
    dtype = DTYPES[-1]
    seqs = ragged_decodes(NUM_DECODES, DECODE_MAX_LEN, block_size)
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
    query = torch.randn(len(seqs), num_heads, head_dim, dtype=dtype, device=DEVICE)
    launch = DecodeLaunch(kv_heads_per_program=per_program)
    assert_decode_matches_reference(query, cache, metadata, launch, ((1, None), (3, True), (3, False)))


# (block_size, num_heads, num_kv_heads, head_dim, block_n): tiles over several blocks, within one block,
# and exactly one block; a head dim not a power of 2.
if ON_GPU:
    CARRY_SHAPES = [
        (16, 32, 8, 64, 32),
        (16, 16, 8, 128, 32),
        (16, 14, 2, 64, 128),
        (64, 28, 4, 64, 32),
        (32, 12, 2, 96, 32),
    ]
else:
    CARRY_SHAPES = [(8, 8, 2, 32, 32), (32, 6, 2, 16, 16), (16, 4, 1, 24, 16)]


@pytest.mark.parametrize(("block_size", "num_heads", "num_kv_heads", "head_dim", "block_n"), CARRY_SHAPES)
def test_decode_with_block_ids_carried_a_tile_ahead_matches_reference(
    block_size, num_heads, num_kv_heads, head_dim, block_n
):
    """The carried ids must be the next tile's: one tile late or early, the wrong blocks are read (NaN
    slots or another sequence's keys)."""
    dtype = DTYPES[-1]
    seqs = ragged_decodes(NUM_DECODES, DECODE_MAX_LEN, block_size)
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
    query = torch.randn(len(seqs), num_heads, head_dim, dtype=dtype, device=DEVICE)
    launch = DecodeLaunch(block_n=block_n, carry_block_ids=True)
    assert_decode_matches_reference(query, cache, metadata, launch, ((1, None), (3, True), (7, False)))


def test_decode_plan_joins_kv_heads_for_long_splits_of_narrow_rows_or_pairs_them_on_big_grids():
    plan = triton_decode.choose_decode_plan
    # Qwen2.5-0.5B layout (2 KV heads of 64) on 132 SMs: joint where the context splits into long pieces
    assert plan(64, 2, 64, 4096, 132) == (2, 5)
    assert plan(64, 2, 64, 16384, 132) == (2, 5)
    assert plan(16, 2, 64, 16384, 132) == (2, 17)
    assert plan(64, 2, 64, 1024, 132) == (1, 3)  # splits would be 256 tokens
    assert plan(256, 2, 64, 4096, 132) == (1, 1)  # no split needed: one head per program
    # Llama-3.1-8B layout (8 KV heads of 128): rows too wide, never joint
    assert plan(16, 8, 128, 16384, 132) == (1, 3)
    assert plan(256, 8, 128, 512, 132) == (1, 1)
    # Llama-3.2-1B layout (8 KV heads of 64): pairs of heads once the halved grid keeps >= 4 programs
    # per SM and nothing splits
    assert plan(256, 8, 64, 512, 132) == (2, 1)
    assert plan(132, 8, 64, 2048, 132) == (2, 1)
    assert plan(131, 8, 64, 512, 132) == (1, 1)
    assert plan(64, 8, 64, 512, 132) == (1, 1)
    assert plan(16, 8, 64, 4096, 132) == (1, 3)


def test_decode_carries_block_ids_by_default_for_one_narrow_kv_head_in_one_split():
    """Only in the region measured faster or equal (the 1B's 64-row steps, session 18; the one-split rows
    of session 11's kernel table), with blocks shorter than the 32-token tile."""
    launch = triton_decode.default_decode_launch
    assert launch(64, 16, kv_per_prog=1, single=True) == (32, 4, 3, True)  # Llama-3.2-1B at 64 rows
    assert launch(32, 8, kv_per_prog=1, single=True).carry_block_ids
    assert not launch(64, 16, kv_per_prog=1, single=False).carry_block_ids  # splits
    assert not launch(64, 16, kv_per_prog=2, single=True).carry_block_ids  # head pairs (1B, 256 rows)
    assert not launch(128, 16, kv_per_prog=1, single=True).carry_block_ids  # Qwen3-0.6B
    assert not launch(64, 32, kv_per_prog=1, single=True).carry_block_ids  # a tile within one block
    assert launch(64, 16, kv_per_prog=1, single=False) == (128, 4, 3, False)
    # The caller's choice either way, with the tile for it
    assert launch(64, 16, kv_per_prog=1, single=True, carry_ids=False) == (128, 4, 3, False)
    assert launch(128, 16, kv_per_prog=2, single=False, carry_ids=True) == (32, 4, 3, True)


@pytest.fixture
def decode_launches(monkeypatch) -> list[tuple[bool, int]]:
    """(CARRY_IDS, BLOCK_N) of every launch of the decode kernel while the test runs."""
    launched: list[tuple[bool, int]] = []
    kernel = triton_decode._decode_split_kernel

    class RecordingKernel:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launched.append((kwargs["CARRY_IDS"], kwargs["BLOCK_N"]))
                return kernel[grid](*args, **kwargs)

            return launch

    monkeypatch.setattr(triton_decode, "_decode_split_kernel", RecordingKernel())
    return launched


def test_decode_launches_the_kernel_its_default_launch_names(decode_launches):
    """The rule above reaches the kernel: carried 32-token tiles for one split of one narrow KV head, the
    uncarried tile otherwise, and a caller's choice over either."""
    block_size, num_heads, num_kv_heads, head_dim, dtype = 16, 4, 2, 64, DTYPES[-1]
    seqs = ragged_decodes(NUM_DECODES, 100, block_size)
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
    query = torch.randn(len(seqs), num_heads, head_dim, dtype=dtype, device=DEVICE)
    one_kv_head = DecodeLaunch(kv_heads_per_program=1)
    runs = [
        (1, one_kv_head),
        (3, one_kv_head),
        (1, dataclasses.replace(one_kv_head, carry_block_ids=False)),
        (3, dataclasses.replace(one_kv_head, carry_block_ids=True)),
    ]
    for num_splits, launch in runs:
        out = torch.full_like(query, float("nan"))
        paged_decode_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            metadata.max_seq_len, 0.1, num_splits=num_splits, launch=launch,
        )  # fmt: skip
        assert_close(out, reference_attention(query, cache, metadata, 0.1), dtype)
    assert decode_launches == [(True, 32), (False, 128), (False, 128), (True, 32)]


def test_decode_reads_heads_over_64_dims_in_32_token_tiles_at_4_to_6_programs_an_sm(monkeypatch):
    """Session 29's rule, in whole H100 steps: 32-token tiles for heads of 128 dims from 3.5 to 6
    programs an SM (Qwen3-0.6B at 64-96 rows, the 8B at 64), 64 below and above; never for 64 dims;
    PAGEDLLM_DECODE_SHORT_TILES=0 turns it off."""

    def short(num_seqs: int, num_kv_heads: int, head_dim: int, max_seq_len: int = 2048) -> bool:
        return triton_decode._plan(
            num_seqs, num_kv_heads, head_dim, max_seq_len, 132, None, DecodeLaunch()
        ).short_tiles

    measured_rows = (48, 64, 80, 96, 112, 128, 256)  # Qwen3-0.6B's layout: 8 KV heads of 128
    assert [rows for rows in measured_rows if short(rows, 8, 128)] == [64, 80, 96]
    assert short(32, 8, 128)  # two splits: 512 programs
    assert short(64, 4, 128)  # Qwen2.5-7B: 4 KV heads in two splits
    assert not short(64, 8, 64) and not short(96, 8, 64)  # the 1B's heads of 64 keep their tiles
    launch = triton_decode.default_decode_launch
    assert launch(128, 16, kv_per_prog=1, single=True, short_tiles=True) == (32, 4, 3, False)
    assert launch(128, 16, kv_per_prog=1, single=True) == (64, 4, 3, False)
    monkeypatch.setattr(triton_decode, "SHORT_TILES", False)
    assert not triton_decode.short_tiles_pay(128, 4.0)


def test_decode_launches_32_token_tiles_where_the_plan_says_and_matches_the_reference(
    monkeypatch, decode_launches
):
    """The short-tile plan reaches the kernel (the interpreter pretends 4 SMs: 2 sequences of 8 KV heads of
    128 in one split are 4 programs an SM, 4 sequences 8) and reads the same attention."""
    block_size, num_heads, num_kv_heads, head_dim, dtype = 16, 16, 8, 128, DTYPES[-1]
    monkeypatch.setattr(triton_decode, "_num_sms", lambda device: 4)
    for num_seqs in (2, 4):
        seqs = [(n, 1) for n in (100, 37, 16, 1)[:num_seqs]]
        cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
        query = torch.randn(num_seqs, num_heads, head_dim, dtype=dtype, device=DEVICE)
        out = torch.full_like(query, float("nan"))
        paged_decode_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            metadata.max_seq_len, 0.1, num_splits=1,
        )  # fmt: skip
        assert_close(out, reference_attention(query, cache, metadata, 0.1), dtype)
    assert decode_launches == [(False, 32), (False, 64)]


@pytest.mark.skipif(ON_GPU, reason="test_triton_generation checks this on the GPU, at the GPU's SM count")
def test_engine_generation_through_carried_block_ids_matches_the_reference_backend(tmp_path, decode_launches):
    """Greedy float32 generation through the engine with the Triton backend (the interpreter, which
    pretends 4 SMs: 6 sequences of 2 KV heads of 64 take one split) equals the reference backend's, and
    its decode steps ran the carried kernel."""
    from pagedllm import LLM, SamplingParams

    config = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 256,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    rng = random.Random(4)
    prompts = [[rng.randrange(1, 500) for _ in range(n)] for n in (1, 16, 17, 40, 60, 33)]
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    outputs = {}
    for backend in ("reference", "triton"):
        llm = LLM(str(path), load_format="dummy", dtype="float32", device="cpu", attention_backend=backend,
                  max_model_len=128, block_size=16)  # fmt: skip
        outputs[backend] = [o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)]
        del llm
    assert outputs["triton"] == outputs["reference"]
    assert (True, 32) in decode_launches, f"no carried launch among {sorted(set(decode_launches))}"


def assert_counters_zero(device: torch.device) -> None:
    """The fused merge leaves every counter at zero for the next launch (CUDA-graph replays too)."""
    workspace = triton_decode._WORKSPACES.get(device)
    if workspace is not None:
        counters = workspace[: triton_decode._COUNTER_SLOTS[device]].view(torch.int32)
        assert int(counters.abs().sum()) == 0


@pytest.mark.parametrize("num_splits", [2, 3] if not ON_GPU else [2, 3, 5, 8])
def test_fused_merge_is_repeatable_and_skips_prefills_in_mixed_batches(num_splits):
    """Back-to-back fused launches on fresh inputs (stale counters would merge early or never), and a
    mixed batch with decodes_only: the prefill sequences' outputs stay untouched."""
    dtype = torch.bfloat16 if ON_GPU else torch.float32
    block_size, num_heads, num_kv_heads, head_dim = (16, 14, 2, 64) if ON_GPU else (8, 6, 2, 32)
    for _ in range(3):
        seqs = [*ragged_decodes(NUM_DECODES, DECODE_MAX_LEN, block_size), (70, 5), (40, 40)]
        random.shuffle(seqs)
        cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
        num_tokens = metadata.query_start_loc_host[-1]
        query = torch.randn(num_tokens, num_heads, head_dim, dtype=dtype, device=DEVICE)
        ref = reference_attention(query, cache, metadata, 0.1)
        out = torch.full_like(query, float("nan"))
        paged_decode_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            metadata.max_seq_len, 0.1, num_splits=num_splits, decodes_only=True,
            launch=DecodeLaunch(fused_merge=True),
        )  # fmt: skip
        starts = metadata.query_start_loc_host
        decode_rows = [a for a, b in itertools.pairwise(starts) if b - a == 1]
        other_rows = sorted(set(range(num_tokens)) - set(decode_rows))
        assert out[other_rows].isnan().all(), "a prefill sequence's rows were written by the decode kernel"
        assert_close(out[decode_rows], ref[decode_rows], dtype)
        assert_counters_zero(query.device)


# -- prefill / extend / mixed ----------------------------------------------------------------------

# (context after the step, new tokens): decodes, whole prefills, chunks continuing a prefill, prefix-cache
# hits extending a cached prefix, block-aligned and unaligned ends.
if ON_GPU:
    MIXED_SEQS = [(1, 1), (2048, 2048), (5000, 300), (16384, 1), (777, 777), (4096, 17), (130, 1), (9, 9)]
    PREFILL_SHAPES = [(16, 32, 8, 128), (8, 14, 2, 64), (256, 8, 2, 256), (64, 8, 8, 128), (32, 12, 2, 96)]
else:
    # (192, 64): a cached prefix of whole 64-key tiles, no cut at its end.
    MIXED_SEQS = [(1, 1), (9, 9), (37, 4), (200, 130), (20, 1), (64, 64), (130, 3), (192, 64)]
    PREFILL_SHAPES = [(16, 8, 2, 32), (8, 6, 2, 16), (64, 2, 2, 64), (32, 14, 2, 24)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("block_size", "num_heads", "num_kv_heads", "head_dim"), PREFILL_SHAPES)
def test_prefill_kernel_matches_reference_on_a_mixed_batch(
    dtype, block_size, num_heads, num_kv_heads, head_dim
):
    seqs = random.sample(MIXED_SEQS, len(MIXED_SEQS))
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
    num_tokens = metadata.query_start_loc_host[-1]
    query = torch.randn(num_tokens, num_heads, head_dim, dtype=dtype, device=DEVICE)
    scale = head_dim**-0.5
    out = torch.full_like(query, float("nan"))
    paged_prefill_attention(
        out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc, scale
    )
    assert_close(out, reference_attention(query, cache, metadata, scale), dtype)


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != torch.float32])  # float32: all from the cache
@pytest.mark.parametrize(("block_size", "num_heads", "num_kv_heads", "head_dim"), PREFILL_SHAPES)
def test_prefill_reads_new_tokens_from_the_step_and_only_the_prefix_from_the_cache(
    dtype, block_size, num_heads, num_kv_heads, head_dim
):
    """Given the step's K/V (views into a fused QKV output, as the models produce them), the kernel reads
    the new tokens from them, by pointers and by TMA descriptors where those apply: the new tokens' cache
    slots stay NaN, so a new key read through the cache fails, and so does a prefix key read from the
    step's tensors."""
    seqs = random.sample(MIXED_SEQS, len(MIXED_SEQS))
    cache, filled, metadata, (query, key, value) = make_step(
        seqs, block_size, (num_heads, num_kv_heads, head_dim), dtype
    )
    expected = reference_attention(query, filled, metadata, head_dim**-0.5)
    ways = [False, True] if tma_applies(key, value) else [False]
    assert ways == [False] or head_dim == triton.next_power_of_2(head_dim)
    for tma in ways:
        out = torch.full_like(query, float("nan"))
        paged_prefill_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            head_dim**-0.5, key=key, value=value, launch=PrefillLaunch(tma=tma),
        )  # fmt: skip
        assert_close(out, expected, dtype)


def test_a_non_finite_value_in_one_sequence_stays_out_of_the_others():
    """A diagonal tile of the step's K/V reaches into the next sequence's rows (by TMA it loads them):
    an overflowed value there (inf) must not turn a neighbour's output into NaN through 0 x inf."""
    dtype, block_size, num_heads, num_kv_heads, head_dim = torch.float16, 16, 8, 2, 32
    seqs = [(10, 5), (20, 20), (40, 7), (9, 9)]
    cache, filled, metadata, (query, key, value) = make_step(
        seqs, block_size, (num_heads, num_kv_heads, head_dim), dtype
    )
    expected = reference_attention(query, filled, metadata, 0.125)
    starts = metadata.query_start_loc_host
    num_tokens = starts[-1]
    value[starts[1]] = float("inf")  # the second sequence's first token: right after the first's tile
    others = torch.ones(num_tokens, dtype=torch.bool, device=DEVICE)
    others[starts[1] : starts[2]] = False
    ways = [False, True] if tma_applies(key, value) else [False]
    for tma in ways:
        out = torch.full_like(query, float("nan"))
        paged_prefill_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            0.125, key=key, value=value, launch=PrefillLaunch(tma=tma),
        )  # fmt: skip
        assert_close(out[others], expected[others], dtype)


# (context, new tokens) of plain prefills (no cached tokens): one batch with a sequence shorter than any
# key tile, one whose sequences all fill a tile (every plan's tiles are at most 128 keys).
PLAIN_PREFILLS = {
    "short": [(9, 9), (130, 130), (64, 64), (200, 200)] if not ON_GPU else [(9, 9), (2048, 2048), (777, 777)],
    "long": [(130, 130), (200, 200), (129, 129)] if not ON_GPU else [(2048, 2048), (777, 777), (4100, 4100)],
}


@pytest.mark.parametrize("batch", sorted(PLAIN_PREFILLS))
def test_plain_prefill_told_its_facts_matches_reference(batch):
    """Told that no sequence has cached tokens and the fewest new tokens one has, the kernel drops its
    loops over the cache and (TMA, every sequence at least a tile long) the zeroing of other sequences'
    values, and still matches the reference, by pointers and through TMA descriptors. 16-key tiles give
    the diagonal two tiles (more new tokens per query tile than keys per tile): only the second shifts."""
    dtype, block_size, layout = torch.float16, 16, (8, 2, 32) if not ON_GPU else (32, 8, 128)
    seqs = random.sample(PLAIN_PREFILLS[batch], len(PLAIN_PREFILLS[batch]))
    cache, filled, metadata, (query, key, value) = make_step(seqs, block_size, layout, dtype)
    expected = reference_attention(query, filled, metadata, 0.125)
    for tma in [False, True] if tma_applies(key, value) else [False]:
        for block_n in (None, 16):
            out = torch.full_like(query, float("nan"))
            paged_prefill_attention(
                out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
                0.125, key=key, value=value, cached_prefix=False, shortest_query=min(q for _, q in seqs),
                launch=PrefillLaunch(tma=tma, block_n=block_n),
            )  # fmt: skip
            assert_close(out, expected, dtype)


def test_a_non_finite_value_stays_out_of_long_neighbours_whose_values_are_not_zeroed():
    """Where every sequence fills a key tile, no value is zeroed: a diagonal tile through TMA is shifted
    back to end at its sequence's last token, so an inf right after a sequence never reaches it."""
    dtype, block_size, num_heads, num_kv_heads, head_dim = torch.float16, 16, 8, 2, 32
    seqs = [(130, 130), (140, 140), (129, 129)]
    cache, filled, metadata, (query, key, value) = make_step(
        seqs, block_size, (num_heads, num_kv_heads, head_dim), dtype
    )
    expected = reference_attention(query, filled, metadata, 0.125)
    starts = metadata.query_start_loc_host
    value[starts[1]] = float("inf")  # the second sequence's first token: inside the first's last tile
    others = torch.ones(starts[-1], dtype=torch.bool, device=DEVICE)
    others[starts[1] : starts[2]] = False
    assert tma_applies(key, value)
    out = torch.full_like(query, float("nan"))
    paged_prefill_attention(
        out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
        0.125, key=key, value=value, cached_prefix=False, shortest_query=129, launch=PrefillLaunch(tma=True),
    )  # fmt: skip
    assert_close(out[others], expected[others], dtype)


def test_backend_tells_the_prefill_kernel_what_its_sequences_hold():
    """(a cached prefix, the fewest new tokens) over the sequences the prefill kernel attends: beside
    decodes it skips, only the prefills count."""
    backend = TritonAttentionBackend()
    _, plain_and_decode = make_paged_batch([(40, 1), (9, 9), (20, 20)], 16, 2, 32, torch.float16)
    assert backend.prefill_facts(plain_and_decode, skip_decodes=True) == (False, 9)
    assert backend.prefill_facts(plain_and_decode, skip_decodes=False) == (True, 1)
    _, chunk = make_paged_batch([(300, 100), (20, 20)], 16, 2, 32, torch.float16)
    assert backend.prefill_facts(chunk, skip_decodes=False) == (True, 20)


def test_backend_runs_a_plain_prefill_step_as_plain_and_matches_reference(monkeypatch):
    """A step of plain prompts reaches the kernel with its facts (no cached tokens, the shortest
    prompt's length) through the backend's forward, and its outputs match the reference."""
    from pagedllm.attention.triton import backend as triton_backend

    told: list[tuple[bool, int | None]] = []

    def recording(*args, **kwargs):
        told.append((kwargs["cached_prefix"], kwargs["shortest_query"]))
        return paged_prefill_attention(*args, **kwargs)

    monkeypatch.setattr(triton_backend, "paged_prefill_attention", recording)
    dtype, layout = torch.float16, (8, 2, 32) if not ON_GPU else (32, 8, 128)
    seqs = PLAIN_PREFILLS["long"]
    cache, filled, metadata, (query, key, value) = make_step(seqs, 16, layout, dtype)
    out = TritonAttentionBackend().forward(query, key, value, cache, metadata, 0.125)
    assert told == [(False, min(q for _, q in seqs))]
    assert_close(out, reference_attention(query, filled, metadata, 0.125), dtype)


def test_backend_forward_hands_the_step_kv_to_the_prefill_kernel(monkeypatch):
    """forward() passes the K/V it just wrote to the prefill kernel (read there without block lookups);
    attend() alone, without them, reads every key through the cache."""
    from pagedllm.attention.triton import backend as triton_backend

    seen: list[bool] = []

    def recording(*args, **kwargs):
        seen.append(kwargs.get("key") is not None and kwargs.get("value") is not None)
        return paged_prefill_attention(*args, **kwargs)

    monkeypatch.setattr(triton_backend, "paged_prefill_attention", recording)
    dtype = torch.float16
    seqs = [(9, 9), (37, 4)]
    cache, metadata = make_paged_batch(seqs, 16, 2, 32, dtype, fill_new=False)
    num_tokens = metadata.query_start_loc_host[-1]
    query = torch.randn(num_tokens, 8, 32, dtype=dtype, device=DEVICE)
    key, value = torch.randn(2, num_tokens, 2, 32, dtype=dtype, device=DEVICE)
    backend = TritonAttentionBackend()
    out = backend.forward(query, key, value, cache, metadata, 0.125)
    assert_close(
        backend.attend(query, cache, metadata, 0.125),
        reference_attention(query, cache, metadata, 0.125),
        dtype,
    )
    assert_close(out, reference_attention(query, cache, metadata, 0.125), dtype)
    assert seen == [True, False]


def test_prefill_rejects_step_kv_of_the_wrong_shape_and_tma_where_it_cannot_apply():
    cache, metadata = make_paged_batch([(9, 9)], 16, 2, 32, torch.float16)
    query = torch.randn(9, 8, 32, dtype=torch.float16, device=DEVICE)
    out = torch.empty_like(query)
    args = (out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc, 0.125)
    wrong = torch.randn(9, 1, 32, dtype=torch.float16, device=DEVICE)
    with pytest.raises(ValueError, match=r"key .* and value .* must both be"):
        paged_prefill_attention(*args, key=wrong, value=wrong)
    odd = torch.randn(9, 2, 48, dtype=torch.float16, device=DEVICE)[..., :32]  # rows 96 values apart
    with pytest.raises(ValueError, match="tma=True needs"):
        paged_prefill_attention(*args, key=odd, value=odd, launch=PrefillLaunch(tma=True))


def test_prefill_sequence_search_over_several_chunks():
    """The tile -> sequence search reads the sequence starts a chunk at a time: with 2 per chunk, a
    batch of 7 sequences takes 4 chunks (the last one partial)."""
    dtype = torch.float32
    seqs = random.sample(MIXED_SEQS, len(MIXED_SEQS))
    cache, metadata = make_paged_batch(seqs, 16, 2, 32, dtype)
    query = torch.randn(metadata.query_start_loc_host[-1], 4, 32, dtype=dtype, device=DEVICE)
    out = torch.full_like(query, float("nan"))
    paged_prefill_attention(
        out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc, 0.2,
        launch=PrefillLaunch(search_chunk=2),
    )  # fmt: skip
    assert_close(out, reference_attention(query, cache, metadata, 0.2), dtype)


@pytest.mark.parametrize("mixed_batch", ["split", "unified"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_backend_forward_writes_then_attends_like_the_reference(mixed_batch, dtype):
    block_size, num_heads, num_kv_heads, head_dim = (16, 32, 8, 128) if ON_GPU else (16, 8, 2, 32)
    seqs = random.sample(MIXED_SEQS, len(MIXED_SEQS))
    cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype, fill_new=False)
    num_tokens = metadata.query_start_loc_host[-1]
    query = torch.randn(num_tokens, num_heads, head_dim, dtype=dtype, device=DEVICE)
    key = torch.randn(num_tokens, num_kv_heads, head_dim, dtype=dtype, device=DEVICE)
    value = torch.randn(num_tokens, num_kv_heads, head_dim, dtype=dtype, device=DEVICE)
    expected_cache = cache.double()
    ReferenceAttentionBackend().write_kv(key.double(), value.double(), expected_cache, metadata.slot_mapping)
    out = TritonAttentionBackend(mixed_batch).forward(query, key, value, cache, metadata, 0.125)
    assert torch.equal(cache.double().nan_to_num(), expected_cache.nan_to_num())
    assert_close(out, reference_attention(query, expected_cache, metadata, 0.125), dtype)


def test_pure_decode_step_through_the_backend_matches_reference():
    dtype = torch.bfloat16 if ON_GPU else torch.float32
    seqs = ragged_decodes(NUM_DECODES, DECODE_MAX_LEN, 16)
    cache, metadata = make_paged_batch(seqs, 16, 2, 64, dtype, fill_new=False)
    query = torch.randn(len(seqs), 8, 64, dtype=dtype, device=DEVICE)
    key, value = torch.randn(2, len(seqs), 2, 64, dtype=dtype, device=DEVICE)
    expected_cache = cache.clone()
    ReferenceAttentionBackend().write_kv(key, value, expected_cache, metadata.slot_mapping)
    backend = TritonAttentionBackend()
    out = backend.forward(query, key, value, cache, metadata, 0.125)
    # The step's K/V are in the cache, and the step attended to them.
    assert torch.equal(cache.isnan(), expected_cache.isnan())
    assert torch.equal(cache.nan_to_num(), expected_cache.nan_to_num())
    assert_close(out, reference_attention(query, expected_cache, metadata, 0.125), dtype)


def test_backend_rejects_unknown_mixed_batch_mode():
    with pytest.raises(ValueError, match="mixed_batch"):
        TritonAttentionBackend("padded")


# -- compiled variants -----------------------------------------------------------------------------


@pytest.mark.skipif(not ON_GPU, reason="the interpreter compiles nothing")
def test_batch_size_block_table_width_and_split_count_compile_no_new_variant():
    """A serving step's batch size, block-table width and split count change from step to step; Triton
    would compile a variant per value class (1, a multiple of 16, other) of each, so a warm engine met a
    ~1 s compile mid-run (the first step of a saturated server run). Once warm, none may compile."""
    from triton_compiles import recorded_compiles

    dtype, block_size, num_heads, num_kv_heads, head_dim = torch.bfloat16, 16, 14, 2, 64

    def run_prefill(seqs: list[tuple[int, int]]) -> None:
        _, cache, metadata, (query, key, value) = make_step(
            seqs, block_size, (num_heads, num_kv_heads, head_dim), dtype
        )
        expected = reference_attention(query, cache, metadata, 0.125)
        # Every key through the cache, then the new ones from the step's K/V as a serving step reads them
        # (by pointers, and through TMA descriptors: their shape follows the step's token count).
        step_kv = {"key": key, "value": value}
        ways = [{}, {**step_kv, "launch": PrefillLaunch(tma=False)}]
        if tma_applies(key, value):
            ways.append({**step_kv, "launch": PrefillLaunch(tma=True)})
        for new_kv in ways:
            out = torch.full_like(query, float("nan"))
            paged_prefill_attention(
                out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
                0.125, **new_kv,
            )  # fmt: skip
            assert_close(out, expected, dtype)

    def run_decode(seqs: list[tuple[int, int]], num_splits: int) -> None:
        cache, metadata = make_paged_batch(seqs, block_size, num_kv_heads, head_dim, dtype)
        query = torch.randn(len(seqs), num_heads, head_dim, dtype=dtype, device=DEVICE)
        out = torch.full_like(query, float("nan"))
        paged_decode_attention(
            out, query, cache, metadata.block_tables, metadata.seq_lens, metadata.query_start_loc,
            metadata.max_seq_len, 0.125, num_splits=num_splits,
            launch=DecodeLaunch(kv_heads_per_program=1, fused_merge=True),
        )  # fmt: skip
        assert_close(out, reference_attention(query, cache, metadata, 0.125), dtype)

    run_prefill([(100, 100), (37, 5)])
    run_decode([(300, 1), (40, 1)], num_splits=9)
    with recorded_compiles() as compiled:
        # (context, new tokens) per sequence: 1, 16, 17 and 32 sequences; block tables 16, 17, 16 and 33
        # wide (make_paged_batch pads each by one block).
        for seqs in ([(240, 240)], [(256, 256)] * 16, [(240, 240)] * 17, [(512, 30)] * 32):
            run_prefill(seqs)
        for seqs, num_splits in (([(500, 1)], 16), ([(256, 1)] * 16, 9), ([(512, 1)] * 17, 12)):
            run_decode(seqs, num_splits)
    assert not compiled, f"kernels compiled again for new batch shapes: {compiled}"
