"""Piecewise CUDA graphs for steps that are not pure decodes (GPU tests skipped without CUDA)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from pagedllm.config import EngineConfig
from pagedllm.worker.piecewise_graphs import token_count_ladder

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 512,
    "intermediate_size": 1024,
    "num_hidden_layers": 3,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 4096,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
# Qwen3's decoder: q/k norms before RoPE (q and k reach attention as new tensors, not views of qkv).
QWEN3_CONFIG = CONFIG | {"architectures": ["Qwen3ForCausalLM"], "head_dim": 64, "tie_word_embeddings": True}
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
    path.write_text(json.dumps(CONFIG if request.param == "llama" else QWEN3_CONFIG))
    return path


def _make_llm(config_path: Path, dtype: str, piecewise_max: int):  # type: ignore[no-untyped-def]
    from pagedllm import LLM

    return LLM(
        str(config_path),
        load_format="dummy",
        dtype=dtype,
        kv_cache_memory_bytes=1 << 28,
        max_num_seqs=24,
        # Chunks of at most 200 tokens beside the running decodes: many mixed steps of every size.
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
    # 128: steps of up to 128 tokens replay graphs, larger ones (up to 200) stay eager in the same run.
    for piecewise_max in (0, 128):
        llm = _make_llm(config_path, "float32", piecewise_max)
        runner = llm.engine.runner
        assert (runner.piecewise is not None) is (piecewise_max > 0)
        outputs[piecewise_max] = [
            o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)
        ]
        if runner.piecewise is not None:
            assert runner.piecewise.num_runs > 0
        del llm
    assert outputs[128] == outputs[0]


@needs_cuda
def test_a_piecewise_step_matches_the_eager_step_within_bf16_tolerance(config_path):
    pytest.importorskip("triton")
    from pagedllm.attention.context import forward_context
    from pagedllm.core.scheduler_output import ScheduledRequest
    from pagedllm.worker.model_inputs import build_model_inputs

    llm = _make_llm(config_path, "bfloat16", 256)
    runner = llm.engine.runner
    assert runner.piecewise is not None
    # A mixed step: a 37-token chunk after 16 cached tokens, a fresh 90-token prompt and three decodes,
    # in blocks of their own.
    lens = [(16, 37), (0, 90), (40, 1), (7, 1), (100, 1)]
    scheduled, next_block = [], 1
    gen = random.Random(3)
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
    inputs = build_model_inputs(scheduled, 16, runner.device)
    with torch.inference_mode():
        for cache in runner.kv_caches:  # the cached tokens' K/V, the same for both runs
            cache[:, 1:next_block].normal_(generator=torch.Generator(runner.device).manual_seed(0))
        with forward_context(inputs.attn_metadata, runner.kv_caches, runner.backend):
            eager = runner.model(inputs.input_ids, inputs.positions).float()
        graphed = runner.piecewise.run(inputs.input_ids, inputs.positions, inputs.attn_metadata).float()
    assert graphed.shape == eager.shape
    scale = eager.abs().max().item()
    assert (graphed - eager).abs().max().item() <= 0.02 * scale
