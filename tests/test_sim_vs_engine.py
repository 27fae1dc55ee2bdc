"""The simulator and the real engine, on the same workload and settings, report the same KV memory.

Same scheduler and KV cache manager code on both sides; only the model differs (a real one samples tokens,
the simulator hands out dummies). With ignore_eos every request runs to max_tokens, so the schedules and
therefore the pool are the same, step for step.
"""

from __future__ import annotations

import json
import random

import pytest
from model_harness import build_hf_model, save_hf_model
from test_contiguous_engine import tiny_llm

from pagedllm import LLM, SamplingParams
from pagedllm.cli import main
from pagedllm.sim.simulator import SimConfig, simulate
from pagedllm.sim.workloads import SimRequest, Workload

COMPARED = ("utilization_at_full_length", "utilization_time_avg", "tail_fragmentation_time_avg")


def workload(num_requests: int, max_prompt: int, max_output: int, vocab: int, seed: int = 0):
    rng = random.Random(seed)
    prompts = [
        [rng.randrange(3, vocab) for _ in range(rng.randint(1, max_prompt))] for _ in range(num_requests)
    ]
    outputs = [rng.randint(1, max_output) for _ in range(num_requests)]
    sim = Workload(
        name="trace",
        label="engine-comparison",
        requests=tuple(SimRequest(len(p), o) for p, o in zip(prompts, outputs, strict=True)),
    )
    params = [SamplingParams(temperature=0.0, max_tokens=o, ignore_eos=True) for o in outputs]
    return prompts, params, sim


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return save_hf_model(build_hf_model("LlamaForCausalLM"), tmp_path_factory.mktemp("tiny-llama"))


def compare(llm: LLM, prompts, params, sim_workload) -> tuple[dict, dict]:
    llm.generate(prompts, params, use_tqdm=False)
    real = llm.kv_stats_report()
    simulated = simulate(sim_workload, SimConfig.like(llm.engine.scheduler)).to_dict()
    for key in COMPARED:
        assert simulated["summary"][key] == pytest.approx(real["summary"][key], abs=0.01), key
    return real, simulated


@pytest.mark.parametrize(("policy", "num_blocks"), [("paged", 40), ("contiguous", 96)])
def test_simulated_and_tiny_engine_kv_memory_agree(tiny_llama, policy, num_blocks):
    prompts, params, sim_workload = workload(24, max_prompt=40, max_output=20, vocab=256)
    llm = tiny_llm(tiny_llama, policy, num_blocks)
    real, simulated = compare(llm, prompts, params, sim_workload)
    # Not just close: the same schedule, so the same pool at every step.
    for column in (
        "num_running",
        "num_token_slots",
        "num_tail_slots",
        "num_reserved_slots",
        "num_preemptions",
    ):
        assert simulated["steps"][column] == real["steps"][column], column
    if policy == "paged":
        assert real["summary"]["num_preemptions"] > 0  # 40 blocks are too few: preemption is compared too


@pytest.mark.slow
def test_simulated_and_smollm2_kv_utilization_agree(smollm):
    """The issue's requirement, on the real SmolLM2 (float32, default settings): a few dozen requests."""
    vocab = smollm.engine.arch.vocab_size
    prompts, params, sim_workload = workload(32, max_prompt=48, max_output=12, vocab=vocab, seed=1)
    smollm.engine.start_kv_stats()
    try:
        real, simulated = compare(smollm, prompts, params, sim_workload)
    finally:
        smollm.engine.kv_stats = None
    assert real["summary"]["num_finished"] == simulated["summary"]["num_finished"] == 32
    assert simulated["steps"]["num_token_slots"] == real["steps"]["num_token_slots"]


@pytest.mark.slow
def test_generate_kv_report_writes_the_engines_per_step_samples(tmp_path, capsys):
    path = tmp_path / "kv.json"
    argv = [
        "generate",
        "The capital of France is",
        "--max-tokens",
        "4",
        "--ignore-eos",
        "--dtype",
        "float32",
        "--kv-policy",
        "contiguous",
        "--max-model-len",
        "256",
        "--kv-report",
        str(path),
    ]
    assert main(argv) == 0
    report = json.loads(path.read_text())
    (run,) = report["runs"]
    assert run["source"] == "engine" and run["config"]["kv_policy"] == "contiguous"
    assert run["summary"]["num_steps"] == 4 and len(run["steps"]["utilization"]) == 4
    assert report["command"].startswith("pagedllm generate")
    assert "| contiguous |" in capsys.readouterr().err
