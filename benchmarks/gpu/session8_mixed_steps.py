"""Session 8: what a step that is not a pure decode costs, eager against piecewise graphs (GPU only).

One engine (dummy weights, the model's shape from --model), steps made by hand: a prefill chunk of P new
tokens after C cached ones, beside D decodes of context C each, the cache's blocks assigned in order. For
each (P, D) the forward pass (logits of every sequence included) runs N times each way, eager and through
the piecewise graphs, alternating; reported per step: the host's launch time (until the last launch
returns) and the wall time to the GPU's end (synchronized), medians.

    python3 benchmarks/gpu/session8_mixed_steps.py --model ../shared/models/llama-3.2-1b.json --out x.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from pagedllm import LLM
from pagedllm.attention.context import forward_context
from pagedllm.core.scheduler_output import ScheduledRequest
from pagedllm.worker.model_inputs import build_model_inputs


def make_step(
    prefill: int, decodes: int, context: int, block_size: int, vocab: int
) -> list[ScheduledRequest]:
    gen = torch.Generator().manual_seed(prefill * 1000 + decodes)
    step, next_block = [], 1
    for i, new in enumerate([prefill] + [1] * decodes):
        blocks = -(-(context + new) // block_size)
        step.append(
            ScheduledRequest(
                request_id=f"r{i}",
                token_ids=torch.randint(1, vocab, (new,), generator=gen).tolist(),
                start_position=context,
                block_ids=list(range(next_block, next_block + blocks)),
                needs_sample=True,
                arrival_order=i,
            )
        )
        next_block += blocks
    return step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default=None, help="a cProfile of 50 piecewise (512, 255) steps, here")
    args = p.parse_args()
    start = time.perf_counter()
    llm = LLM(args.model, load_format="dummy", max_model_len=2048)
    startup_s = time.perf_counter() - start
    engine = llm.engine
    runner = engine.runner
    assert runner.piecewise is not None, "piecewise graphs are off"
    vocab = engine.arch.vocab_size
    rows = []
    for prefill, decodes in [(16, 0), (64, 32), (256, 0), (512, 64), (512, 255), (1024, 128), (1900, 100)]:
        step = make_step(prefill, decodes, args.context, 16, vocab)
        times: dict[str, list[tuple[float, float]]] = {"eager": [], "piecewise": []}
        with torch.inference_mode():
            for _ in range(args.repeats + 2):
                for mode in ("eager", "piecewise"):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    inputs = build_model_inputs(step, 16, runner.device)
                    if mode == "eager":
                        with forward_context(inputs.attn_metadata, runner.kv_caches, runner.backend):
                            hidden = runner.model(inputs.input_ids, inputs.positions)
                    else:
                        hidden = runner.piecewise.run(
                            inputs.input_ids, inputs.positions, inputs.attn_metadata
                        )
                    logits = runner.model.compute_logits(hidden[inputs.logits_indices])
                    t1 = time.perf_counter()
                    torch.cuda.synchronize()
                    t2 = time.perf_counter()
                    del logits
                    times[mode].append(((t1 - t0) * 1e3, (t2 - t0) * 1e3))
        row = {"prefill": prefill, "decodes": decodes, "tokens": prefill + decodes}
        for mode, samples in times.items():
            samples = samples[2:]
            row[f"{mode}_launch_ms"] = statistics.median(s[0] for s in samples)
            row[f"{mode}_wall_ms"] = statistics.median(s[1] for s in samples)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.profile:
        import cProfile
        import io
        import pstats

        step = make_step(512, 255, args.context, 16, vocab)
        profiler = cProfile.Profile()
        with torch.inference_mode():
            for _ in range(50):
                inputs = build_model_inputs(step, 16, runner.device)
                profiler.enable()
                md = inputs.attn_metadata
                runner.piecewise.run(inputs.input_ids, inputs.positions, md)
                profiler.disable()
                torch.cuda.synchronize()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        with open(args.profile, "w") as f:
            f.write(text.getvalue())
    result = {
        "model": args.model,
        "device": torch.cuda.get_device_name(),
        "engine_startup_s": startup_s,
        "piecewise_sizes": runner.piecewise.sizes,
        "piecewise_pool_bytes": runner.piecewise.pool_bytes,
        "context": args.context,
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
