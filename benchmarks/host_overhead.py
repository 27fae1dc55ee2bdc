"""Host (Python) time per engine step at a large decode batch, on the CPU, with the model's own work
taken out: issue 6's measurement of scheduling + input preparation + sampling + output processing.

A 1-layer Llama of hidden size 64 (dummy weights) makes the forward pass cheap but not free on a CPU
(the reference attention backend loops over sequences), so its wall time is measured and subtracted:
``host_ms = step_ms - model_ms``, where ``model_ms`` covers the model's ``forward`` and
``compute_logits``. Everything else in ``LLMEngine.step()`` is host work the GPU would wait for.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/host_overhead.py [--batch 256] [--context 512]
        [--steps 64] [--profile N]   # N: print the top N functions of a cProfile of the timed steps
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import environment, write_result

TINY_LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "torch_dtype": "float32",
}


class _Timer:
    """Wraps a callable and adds the wall time of each call to ``total``."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.total = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.total += time.perf_counter() - start


def run(batch: int, context: int, steps: int, profile_top: int) -> dict[str, Any]:
    from pagedllm.llm import LLM
    from pagedllm.sampling_params import SamplingParams

    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "tiny-llama.json"
        config_path.write_text(json.dumps(TINY_LLAMA))
        llm = LLM(
            model=str(config_path),
            load_format="dummy",
            max_model_len=2048,
            max_num_seqs=batch,
            dtype="float32",
        )
    engine = llm.engine
    params = SamplingParams(temperature=0.0, max_tokens=2048 - context, ignore_eos=True)
    gen = torch.Generator().manual_seed(0)
    for i in range(batch):
        prompt = torch.randint(100, TINY_LLAMA["vocab_size"], (context,), generator=gen).tolist()
        tracker = engine.make_request(prompt, params, str(i))
        tracker.stream_outputs = False  # as LLM.generate: outputs only for finished requests
        engine.add_tracked_request(tracker)
    while engine.scheduler.waiting or any(
        r.num_computed_tokens < r.num_prompt_tokens for r in engine.scheduler.running
    ):
        engine.step()
    for _ in range(4):
        engine.step()

    model = engine.runner.model
    forward = _Timer(model.forward)
    logits = _Timer(model.compute_logits)
    model.forward = forward  # type: ignore[method-assign]
    model.compute_logits = logits  # type: ignore[method-assign]
    # Where the host time goes: the scheduler's two calls and the runner (less the model).
    schedule = _Timer(engine.scheduler.schedule)
    update = _Timer(engine.scheduler.update_from_output)
    execute = _Timer(engine.runner.execute)
    engine.scheduler.schedule = schedule  # type: ignore[method-assign]
    engine.scheduler.update_from_output = update  # type: ignore[method-assign]
    engine.runner.execute = execute  # type: ignore[method-assign]
    profiler = cProfile.Profile() if profile_top else None
    step_ms, model_ms = [], []
    parts: dict[str, list[float]] = {"schedule": [], "execute_host": [], "update": []}
    for _ in range(steps):
        before = forward.total + logits.total
        marks = (schedule.total, execute.total, update.total)
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        engine.step()
        if profiler is not None:
            profiler.disable()
        step_ms.append((time.perf_counter() - start) * 1e3)
        model_ms.append((forward.total + logits.total - before) * 1e3)
        parts["schedule"].append((schedule.total - marks[0]) * 1e3)
        parts["execute_host"].append((execute.total - marks[1]) * 1e3 - model_ms[-1])
        parts["update"].append((update.total - marks[2]) * 1e3)
        if len(engine.scheduler.running) != batch:
            raise RuntimeError(f"{len(engine.scheduler.running)} sequences running, expected {batch}")
    if profiler is not None:
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
        stats.print_stats(profile_top)
    host_ms = [s - m for s, m in zip(step_ms, model_ms, strict=True)]
    # The engine's own output side: detokenize, stop strings, RequestOutputs.
    parts["engine_rest"] = [
        h - a - b - c
        for h, a, b, c in zip(host_ms, parts["schedule"], parts["execute_host"], parts["update"], strict=True)
    ]
    return {
        "batch": batch,
        "context": context,
        "steps": steps,
        "step_ms": statistics.median(step_ms),
        "model_ms": statistics.median(model_ms),
        "host_ms": statistics.median(host_ms),
        "host_ms_per_sequence_us": statistics.median(host_ms) / batch * 1e3,
        **{f"{name}_ms": statistics.median(values) for name, values in parts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--profile", type=int, default=0, help="print this many cProfile rows")
    parser.add_argument("--name", default=None, help="write benchmarks/results/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    row = run(args.batch, args.context, args.steps, args.profile)
    print(
        f"batch {row['batch']} x context {row['context']}: step {row['step_ms']:.2f} ms, model "
        f"{row['model_ms']:.2f} ms, host {row['host_ms']:.2f} ms "
        f"({row['host_ms_per_sequence_us']:.1f} us per sequence): schedule {row['schedule_ms']:.2f}, "
        f"execute less the model {row['execute_host_ms']:.2f}, update_from_output {row['update_ms']:.2f}, "
        f"engine rest {row['engine_rest_ms']:.2f} ms"
    )
    if args.name:
        import pagedllm

        # NOTE: which pagedllm ran (PYTHONPATH may point at another checkout than this script's).
        result = {**environment(), "benchmark": "host-overhead", "pagedllm_path": pagedllm.__file__, **row}
        print(f"written: {write_result(args.name, result)}")


if __name__ == "__main__":
    main()
