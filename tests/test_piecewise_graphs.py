"""Piecewise CUDA graphs for steps that are not pure decodes (GPU tests skipped without CUDA)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from model_harness import GPU_LLAMA_CONFIG

from pagedllm.config import EngineConfig
from pagedllm.worker.piecewise_graphs import token_count_ladder

# Qwen3's decoder: q/k norms before RoPE (q and k reach attention as new tensors, not views of qkv).
QWEN3_CONFIG = GPU_LLAMA_CONFIG | {
    "architectures": ["Qwen3ForCausalLM"],
    "head_dim": 64,
    "tie_word_embeddings": True,
}
# Head dim 128: on Hopper the prefill kernel reads the step's K/V through TMA descriptors.
WIDE_HEADS_CONFIG = GPU_LLAMA_CONFIG | {"num_attention_heads": 4}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_token_count_ladder_holds_every_count_with_little_padding():
    assert token_count_ladder(16) == [16]
    assert token_count_ladder(40) == [16, 32, 40]
    ladder = token_count_ladder(2048)
    assert ladder[-1] == 2048 and ladder == sorted(set(ladder))
    for n in range(1, 2049):
        size = next(s for s in ladder if s >= n)
        assert size - n < 16 or (size - n) * 8 < n, (n, size)
    assert len(ladder) <= 48  # each size is num_layers + 1 graphs


def test_a_negative_piecewise_graph_limit_is_refused():
    with pytest.raises(ValueError, match="piecewise_graph_max_tokens"):
        EngineConfig(piecewise_graph_max_tokens=-1)


@pytest.fixture(params=["llama", "qwen3"])
def config_path(tmp_path, request) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPU_LLAMA_CONFIG if request.param == "llama" else QWEN3_CONFIG))
    return path


def _make_llm(config_path: Path, dtype: str, piecewise_max: int):  # type: ignore[no-untyped-def]
    from pagedllm import LLM

    return LLM(
        str(config_path),
        load_format="dummy",
        dtype=dtype,
        kv_cache_memory_bytes=1 << 28,
        max_num_seqs=24,
        # Chunks of at most 200 tokens beside the running decodes: mixed steps of every size up to 200.
        max_num_batched_tokens=200,
        piecewise_graph_max_tokens=piecewise_max,
    )


@needs_cuda
def test_piecewise_graphs_generate_the_same_tokens_as_eager_mixed_steps_in_float32(config_path):
    pytest.importorskip("triton")
    from pagedllm import SamplingParams

    rng = random.Random(0)
    prompts = [[rng.randrange(1, 4000) for _ in range(rng.randint(1, 300))] for _ in range(37)]
    params = [
        SamplingParams(temperature=0.0, max_tokens=rng.randint(1, 40), ignore_eos=True) for _ in prompts
    ]
    outputs = {}
    # 128: steps of up to 128 tokens replay graphs; the larger ones (the first steps hold 200 tokens of
    # these prompts) stay eager in the same run.
    for piecewise_max in (0, 128):
        llm = _make_llm(config_path, "float32", piecewise_max)
        runner = llm.engine.runner
        assert (runner.piecewise is not None) is (piecewise_max > 0)
        results = llm.generate(prompts, params, use_tqdm=False)
        outputs[piecewise_max] = [o.outputs[0].token_ids for o in results]
        if runner.piecewise is not None:
            assert runner.piecewise.num_runs > 0
        del llm
    assert outputs[128] == outputs[0]


def _mixed_step(lens: list[tuple[int, int]], first_block: int, seed: int):  # type: ignore[no-untyped-def]
    """Sequences of (cached, new) tokens in consecutive blocks from ``first_block``; and the next free one."""
    from pagedllm.core.scheduler_output import ScheduledRequest

    scheduled, next_block = [], first_block
    gen = random.Random(seed)
    for i, (cached, new) in enumerate(lens):
        num_blocks = -(-(cached + new) // 16)
        scheduled.append(
            ScheduledRequest(
                request_id=f"r{i}",
                token_ids=[gen.randrange(1, 4000) for _ in range(new)],
                start_position=cached,
                block_ids=list(range(next_block, next_block + num_blocks)),
                needs_sample=True,
                arrival_order=i,
            )
        )
        next_block += num_blocks
    return scheduled, next_block


@needs_cuda
@pytest.mark.parametrize(
    "config", [GPU_LLAMA_CONFIG, WIDE_HEADS_CONFIG, QWEN3_CONFIG], ids=["llama", "dim128", "qwen3"]
)
def test_piecewise_steps_of_two_sizes_in_turn_match_eager_steps_in_bf16(tmp_path, config):
    """bf16 reads the step's K/V from the static copies (float32 reads them all from the cache); two
    sizes replayed in turn share the graphs' memory pool."""
    pytest.importorskip("triton")
    from pagedllm.attention.context import forward_context
    from pagedllm.worker.model_inputs import build_model_inputs

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    llm = _make_llm(path, "bfloat16", 256)
    runner = llm.engine.runner
    assert runner.piecewise is not None
    # A 37-token chunk after 16 cached tokens, a fresh 90-token prompt and three decodes (144 padded);
    # then a 200-token step (the largest size: max_num_batched_tokens) in other blocks.
    small, free_block = _mixed_step([(16, 37), (0, 90), (40, 1), (7, 1), (100, 1)], 1, seed=3)
    large, end_block = _mixed_step([(30, 150), (0, 47), (60, 1), (5, 1), (300, 1)], free_block, seed=4)
    with torch.inference_mode():
        for cache in runner.kv_caches:  # the cached tokens' K/V, the same for both paths
            cache[:, 1:end_block].normal_(generator=torch.Generator(runner.device).manual_seed(0))
        for step in (small, large, small):
            inputs = build_model_inputs(step, 16, runner.device)
            with forward_context(inputs.attn_metadata, runner.kv_caches, runner.backend):
                eager = runner.model(inputs.input_ids, inputs.positions).float()
            md = inputs.attn_metadata
            graphed = runner.piecewise.run(inputs.input_ids, inputs.positions, md).float()
            assert graphed.shape == eager.shape
            scale = eager.abs().max().item()
            assert (graphed - eager).abs().max().item() <= 0.005 * scale
    assert runner.piecewise.num_runs == 3


@needs_cuda
def test_a_capture_that_fails_leaves_the_gpu_usable_and_says_what_to_do(tmp_path, monkeypatch):
    pytest.importorskip("triton")
    from pagedllm.worker import piecewise_graphs

    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPU_LLAMA_CONFIG))
    cut = piecewise_graphs._Capture.__call__
    calls = []

    def failing_cut(self, *args):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:  # mid-capture: the second attention of the largest size
            raise torch.cuda.OutOfMemoryError("pretend")
        return cut(self, *args)

    monkeypatch.setattr(piecewise_graphs._Capture, "__call__", failing_cut)
    with pytest.raises(RuntimeError, match="piecewise_graph_max_tokens=0"):
        _make_llm(path, "bfloat16", 64)
    assert torch.ones(4, device="cuda").sum().item() == 4.0
    monkeypatch.setattr(piecewise_graphs._Capture, "__call__", cut)
    llm = _make_llm(path, "bfloat16", 0)
    assert llm.engine.runner.piecewise is None
