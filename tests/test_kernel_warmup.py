"""Start-up compiles every decode-kernel variant a step can pick (``worker/kernel_warmup.py``).

On the CPU the kernels run in Triton's interpreter (nothing compiles): these tests check which steps the
warm-up chooses and that running them touches nothing but block 0 of the cache. That no step compiles
after start-up is checked on a GPU (test_cuda_graphs)."""

from __future__ import annotations

import os
import random

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # see test_triton_attention
pytest.importorskip("triton", reason="triton is not installed")

from model_harness import TINY_CONFIG

from pagedllm.attention import ReferenceAttentionBackend
from pagedllm.attention.triton import TritonAttentionBackend
from pagedllm.attention.triton import decode as triton_decode
from pagedllm.model.loader.model_loader import load_model
from pagedllm.worker.kernel_warmup import (
    _scheduled,
    context_lengths,
    warm_up_attention_variants,
    warm_up_steps,
)
from pagedllm.worker.kv_cache import allocate_kv_caches
from pagedllm.worker.model_inputs import build_model_inputs

CPU = torch.device("cpu")
TINY = {**TINY_CONFIG, "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096}


def test_context_lengths_are_the_powers_of_two_below_the_limit_and_the_limit():
    assert context_lengths(1) == [1]
    assert context_lengths(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    assert context_lengths(64) == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("num_sms", [4, 108, 132])  # the interpreter's pretend count, A100, H100
@pytest.mark.parametrize(("num_kv_heads", "head_dim"), [(2, 16), (2, 64), (8, 128), (1, 64)])
def test_every_step_shape_runs_a_variant_the_warm_up_ran(num_kv_heads, head_dim, num_sms, monkeypatch):
    """For random batch sizes and context lengths, pure decode and mixed, the variant the backend picks
    is one a warm-up step picked in the same mode, and the warm-up runs each variant once. The split
    plan depends on the GPU's SM count: checked for real ones too."""
    monkeypatch.setattr(triton_decode, "_num_sms", lambda device: num_sms)
    backend = TritonAttentionBackend()
    max_num_seqs, max_model_len = 256, 40_000
    steps = warm_up_steps(backend, num_kv_heads, head_dim, CPU, max_num_seqs, max_model_len)

    def variant(num_seqs: int, max_seq_len: int):
        return backend.decode_kernel_variant(num_seqs, num_kv_heads, head_dim, max_seq_len, CPU)

    assert (1, 2, "prefill") in steps
    for kind in ("decode", "mixed"):
        mixed = kind == "mixed"
        warmed = [variant(n, length) for n, length, k in steps if k == kind]
        assert len(warmed) == len(set(warmed)), "a variant warmed twice"
        rng = random.Random(num_kv_heads * 1000 + head_dim + num_sms)
        for _ in range(3000):
            num_seqs = rng.randint(2 if mixed else 1, max_num_seqs)
            max_seq_len = rng.randint(2 if mixed else 1, max_model_len)
            assert variant(num_seqs, max_seq_len) in warmed, (num_seqs, max_seq_len, kind)


def test_warm_up_gives_the_prefill_kernel_both_its_variants_alone_and_beside_decodes():
    """The prefill kernel compiles a faster variant for a plain prefill (no cached tokens; through TMA,
    at least a key tile of at most 128 keys per sequence) and one for everything else, each with decodes
    skipped or not: the warm-up steps reach all four, by pointers and through TMA."""
    backend = TritonAttentionBackend()
    by_pointers, through_tma = set(), set()
    for step in warm_up_steps(backend, 2, 16, CPU, 8, 2048):
        if step[2] == "decode":
            continue
        metadata = build_model_inputs(_scheduled(step, 16), 16, CPU).attn_metadata
        skip_decodes = step[2].startswith("mixed")
        cached_prefix, shortest = backend.prefill_facts(metadata, skip_decodes)
        by_pointers.add((skip_decodes, not cached_prefix))
        through_tma.add((skip_decodes, not cached_prefix and shortest >= 128))
    every = {(False, False), (False, True), (True, False), (True, True)}
    assert by_pointers == every
    assert through_tma == every


def test_no_warm_up_without_a_context_to_warm():
    model, arch = load_model(TINY, dtype=torch.float32, device=CPU, load_format="dummy")
    kv_caches = allocate_kv_caches(arch, 4, 16, torch.float32, CPU)
    assert warm_up_attention_variants(model, kv_caches, TritonAttentionBackend(), CPU, 16, 4, 0) == 0
    assert warm_up_attention_variants(model, kv_caches, TritonAttentionBackend(), CPU, 16, 0, 512) == 0


def test_a_backend_that_compiles_nothing_gets_no_warm_up_steps():
    _, arch = load_model(TINY, dtype=torch.float32, device=CPU, load_format="dummy")
    assert (
        warm_up_steps(ReferenceAttentionBackend(), arch.num_key_value_heads, arch.head_dim, CPU, 8, 512) == []
    )


def test_warm_up_steps_run_through_the_model_and_touch_only_block_zero():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, arch = load_model(TINY, dtype=torch.float32, device=device, load_format="dummy")
    block_size, num_blocks = 16, 8
    kv_caches = allocate_kv_caches(arch, num_blocks, block_size, torch.float32, device)
    for cache in kv_caches:
        cache.fill_(float("nan"))
        cache[:, 0] = 0.0
    backend = TritonAttentionBackend()
    num_steps = warm_up_attention_variants(model, kv_caches, backend, device, block_size, 4, 1024)
    assert num_steps == len(warm_up_steps(backend, 2, 16, device, 4, 1024)) > 2
    for cache in kv_caches:
        assert cache[:, 1:].isnan().all(), "a warm-up step wrote outside block 0"
        assert cache[:, 0].abs().sum() > 0, "the warm-up steps wrote no K/V at all"
