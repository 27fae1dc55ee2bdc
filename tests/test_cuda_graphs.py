"""Decode CUDA graphs and KV sizing by a profiling pass (GPU only; skipped without CUDA)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from model_harness import GPU_LLAMA_CONFIG

from pagedllm.worker.cuda_graphs import batch_size_ladder

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_batch_size_ladder_covers_every_batch_up_to_the_max():
    assert batch_size_ladder(1) == [1]
    assert batch_size_ladder(40) == [1, 2, 4, 8, 16, 32, 40]
    ladder = batch_size_ladder(256)
    assert ladder[-1] == 256 and all(any(s >= n for s in ladder) for n in range(1, 257))


@pytest.fixture
def config_path(tmp_path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPU_LLAMA_CONFIG))
    return path


def _dummy_llm(config_path: Path, **kwargs):
    """The test config with dummy weights in float32 and a fixed KV budget (no profiling of memory that
    an earlier test's engine may still hold)."""
    from pagedllm import LLM

    return LLM(
        str(config_path), load_format="dummy", dtype="float32", kv_cache_memory_bytes=1 << 28, **kwargs
    )


@needs_cuda
def test_decode_graphs_generate_the_same_tokens_as_eager_steps_in_float32(config_path):
    pytest.importorskip("triton")
    from pagedllm import SamplingParams

    rng = random.Random(0)
    # 37 prompts: batches shrink through sizes between the ladder's rungs as requests finish.
    prompts = [[rng.randrange(1, 4000) for _ in range(rng.randint(1, 300))] for _ in range(37)]
    params = [
        SamplingParams(temperature=0.0, max_tokens=rng.randint(1, 40), ignore_eos=True) for _ in prompts
    ]
    outputs = {}
    for eager in (True, False):
        llm = _dummy_llm(config_path, max_num_seqs=24, enforce_eager=eager)
        assert bool(llm.engine.runner.graphs) is not eager
        outputs[eager] = [o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)]
        del llm
    assert outputs[False] == outputs[True]


@needs_cuda
def test_graph_steps_take_the_captured_argmax_only_for_plain_greedy_batches_and_match_eager(config_path):
    pytest.importorskip("triton")
    from pagedllm import SamplingParams

    rng = random.Random(1)
    prompts = [[rng.randrange(1, 4000) for _ in range(rng.randint(1, 100))] for _ in range(12)]
    plain = SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)
    # Batches the captured argmax must not serve: logprobs to report, a seeded draw, a min_tokens block.
    mixed = [
        SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True, logprobs=2),
        SamplingParams(temperature=0.8, top_p=0.9, seed=5, max_tokens=20, ignore_eos=True),
        SamplingParams(temperature=0.0, max_tokens=20, min_tokens=20, stop_token_ids=[7]),
    ]
    outputs: dict[bool, list] = {}
    argmax_runs: dict[bool, int] = {}
    for eager in (True, False):
        llm = _dummy_llm(config_path, max_num_seqs=16, enforce_eager=eager)
        graphs = llm.engine.runner.graphs
        calls = [0]
        if graphs is not None:
            original = graphs.argmax_of_last_run

            def counted(num_rows: int, original=original, calls=calls) -> torch.Tensor:
                calls[0] += 1
                return original(num_rows)

            graphs.argmax_of_last_run = counted  # type: ignore[method-assign]
        results = []
        for params in [plain, *mixed]:
            before = calls[0]
            for o in llm.generate(prompts, params, use_tqdm=False):
                c = o.outputs[0]
                # The top tokens' ids; their values may differ in the last bits between graph and eager.
                top = [sorted(step) for step in c.logprobs] if c.logprobs else None
                results.append((c.token_ids, top))
            if params is not plain:
                assert calls[0] == before, f"the captured argmax served {params}"
        outputs[eager], argmax_runs[eager] = results, calls[0]
        del llm
    assert argmax_runs[False] > 0 and argmax_runs[True] == 0
    assert outputs[False] == outputs[True]


@needs_cuda
def test_kv_cache_is_sized_by_profiling_and_fails_clearly_when_nothing_fits(config_path):
    from pagedllm import LLM

    llm = LLM(str(config_path), load_format="dummy", gpu_memory_utilization=0.5, enforce_eager=True)
    _, total = torch.cuda.mem_get_info()
    kv_bytes = sum(t.numel() * t.element_size() for t in llm.engine.kv_caches)
    assert 0 < kv_bytes <= 0.5 * total
    del llm
    with pytest.raises(ValueError, match="max_model_len"):
        LLM(str(config_path), load_format="dummy", kv_cache_memory_bytes=1 << 16, max_model_len=2048)


@needs_cuda
def test_async_scheduling_generates_the_same_tokens_as_synchronous_steps(config_path):
    pytest.importorskip("triton")
    from pagedllm import LLM, SamplingParams

    rng = random.Random(1)
    prompts = [[rng.randrange(1, 4000) for _ in range(rng.randint(1, 300))] for _ in range(37)]
    max_tokens = [rng.randint(1, 40) for _ in prompts]

    def make_llm(is_async: bool) -> LLM:
        return LLM(
            str(config_path),
            load_format="dummy",
            dtype="float32",
            kv_cache_memory_bytes=1 << 28,
            max_num_seqs=24,
            async_scheduling=is_async,
        )

    llm = make_llm(False)
    free = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=30), use_tqdm=False)
    # Stop tokens the sequences produce mid-way: requests end at unforeseen steps while the next step
    # is already in flight (async), and waiting requests are admitted in their place.
    early = {t for o in free for t in o.outputs[0].token_ids[:3]}
    seen = [t for o in free for t in o.outputs[0].token_ids[3:] if t not in early]
    stops = sorted(set(seen), key=seen.count)[-2:]
    params = [SamplingParams(temperature=0.0, max_tokens=n, stop_token_ids=stops) for n in max_tokens]
    outputs = {}
    for is_async in (False, True):
        llm = make_llm(is_async)
        outputs[is_async] = [
            (o.outputs[0].token_ids, o.outputs[0].finish_reason)
            for o in llm.generate(prompts, params, use_tqdm=False)
        ]
        assert llm.engine.num_steps_scheduled_ahead > 0 or not is_async
        del llm
    assert outputs[True] == outputs[False]


@needs_cuda
@pytest.mark.parametrize("num_heads", [8, 4])  # head dim 64 (prefill by pointers), 128 (TMA on Hopper)
def test_after_start_up_no_step_compiles_an_attention_kernel(tmp_path, num_heads):
    """Start-up compiles every attention-kernel variant a step can pick (kernel_warmup and graph
    capture): then ragged prompts arriving while others decode (mixed steps of many batch sizes and
    context lengths, up to more than 16 splits: the separate merge kernel) compile nothing, of any
    kernel. A variant compiled mid-run stalls every request ~0.6 s."""
    pytest.importorskip("triton")
    from triton_compiles import recorded_compiles

    from pagedllm import LLM, SamplingParams

    config_path = tmp_path / "config.json"
    config = {**GPU_LLAMA_CONFIG, "max_position_embeddings": 8192, "num_attention_heads": num_heads}
    config_path.write_text(json.dumps(config))
    llm = LLM(
        str(config_path),
        load_format="dummy",
        dtype="bfloat16",
        max_model_len=8192,
        max_num_seqs=64,
        kv_cache_memory_bytes=1 << 28,
    )
    rng = random.Random(1)
    engine = llm.engine
    with recorded_compiles() as compiled:
        # A long prompt first: the mixed step that admits the next one splits its decode over more than
        # 16 parts (the separate merge kernel).
        long_prompt = [rng.randrange(1, 4000) for _ in range(5000)]
        engine.add_request("long", long_prompt, SamplingParams(max_tokens=40, ignore_eos=True))
        engine.step()
        for i in range(90):
            if i % 3 == 0:  # a new prompt every third step, beside the decodes
                prompt = [rng.randrange(1, 4000) for _ in range(rng.choice([2, 17, 300, 1500, 5000]))]
                params = SamplingParams(temperature=0.0, max_tokens=rng.randint(1, 60), ignore_eos=True)
                engine.add_request(f"r{i}", prompt, params)
            engine.step()
        while engine.has_unfinished_requests():
            engine.step()
    assert not compiled, f"kernels compiled during steps: {compiled}"


@needs_cuda
def test_swapping_between_the_head_major_gpu_cache_and_the_token_major_host_space_keeps_greedy_output(
    config_path,
):
    """Preemption by swapping copies blocks between the CUDA cache (head-major storage) and the pinned
    swap space (token-major): the greedy tokens of a pool too small for the batch equal those of a pool
    where nothing is preempted."""
    from pagedllm import LLM, SamplingParams
    from pagedllm.worker.kv_cache import kv_cache_bytes_per_block

    bytes_per_block = 2 * 3 * 2 * 64 * 4 * 16  # K and V, 3 layers, 2 KV heads of 64, float32, 16 tokens
    rng = random.Random(1)
    prompts = [[rng.randrange(1, 4000) for _ in range(rng.randint(40, 70))] for _ in range(8)]
    params = SamplingParams(temperature=0.0, max_tokens=48, ignore_eos=True)
    outputs = {}
    for tight in (False, True):
        llm = LLM(
            str(config_path),
            load_format="dummy",
            dtype="float32",
            max_model_len=128,
            kv_cache_memory_bytes=(14 if tight else 200) * bytes_per_block,
            swap_space=40 * bytes_per_block / 2**30,
            preemption_mode="swap",
        )
        assert kv_cache_bytes_per_block(llm.engine.arch, 16, torch.float32) == bytes_per_block
        device_cache, host_cache = llm.engine.kv_caches[0], llm.engine.runner.cpu_kv_caches[0]
        assert device_cache[0, 0, :, 0].stride(0) == 64  # a block's tokens of one KV head: one piece
        assert host_cache.is_contiguous() and host_cache.is_pinned()
        outputs[tight] = [o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)]
        stats = llm.kv_cache_stats()
        assert (stats["num_swap_preemptions"] > 0) is tight
        del llm
    assert outputs[True] == outputs[False]
