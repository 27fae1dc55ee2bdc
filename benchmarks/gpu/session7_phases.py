"""Where a throughput run's time goes: its prefill steps against their compute floor, its decode steps
against their bandwidth floor, and the GPU kernels of each phase (torch.profiler).

After a warm-up the workload runs with every request stopping after its first token (only prefill
steps run: their time against the roofline's prefill floor), then whole (the difference is the decode
phase, against the decode floor), twice each; then each of the two is profiled once and the kernels
summed by name. Every run draws new prompts of the same lengths (another seed): the prefix cache would
otherwise serve the repeated prompts' blocks and skip their prefill.

    python3 benchmarks/gpu/session7_phases.py --model MODEL.json [--input-len 512 --output-len 128
        --num-prompts 256] --out DIR
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from pagedllm.bench.environment import environment
from pagedllm.bench.roofline import measure_ceilings, throughput_floor
from pagedllm.bench.workload import random_workload
from pagedllm.llm import LLM
from pagedllm.sampling_params import SamplingParams

WINDOWS: list[tuple[float, float]] = []  # (start, end) of every timed run, perf_counter seconds


def timed(llm: LLM, prompts: list[list[int]], lens: list[int]) -> float:
    params = [SamplingParams(temperature=0.0, max_tokens=m, ignore_eos=True) for m in lens]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    llm.generate(prompts, params, use_tqdm=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    WINDOWS.append((start, time.perf_counter()))
    return WINDOWS[-1][1] - start


def trace_summary(llm: LLM, window: tuple[float, float]) -> dict:
    """The step trace's rows (PAGEDLLM_STEP_TRACE) of one run, by kind of step."""
    trace = llm.engine._step_trace
    if trace is None:
        return {}
    trace._file.flush()
    rows = [json.loads(line) for line in trace.path.read_text().splitlines()]
    rows = [r for r in rows if window[0] <= trace._start + r["t"] <= window[1]]
    kinds: dict[str, dict] = {}
    for r in rows:
        kind = "prefill" if r["prefill_tokens"] else "decode ahead" if r["ahead"] else "decode sync"
        k = kinds.setdefault(kind, {"steps": 0, "ms": 0.0, "gc_ms": 0.0, "ms_list": []})
        k["steps"] += 1
        k["ms"] += r["ms"]
        k["gc_ms"] += r["gc_ms"]
        k["ms_list"].append(r["ms"])
    for k in kinds.values():
        ms = sorted(k.pop("ms_list"))
        k["median_ms"] = ms[len(ms) // 2]
        k["max_ms"] = ms[-1]
    slowest = sorted(rows, key=lambda r: -r["ms"])[:8]
    return {"rows": len(rows), "kinds": kinds, "first_rows": rows[:6], "slowest": slowest}


def kernel_table(llm: LLM, prompts: list[list[int]], lens: list[int]) -> tuple[float, list[dict]]:
    activity = ProfilerActivity.CUDA if torch.cuda.is_available() else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        timed(llm, prompts, lens)
    rows = [
        {"name": e.key[:90], "calls": e.count, "gpu_ms": e.self_device_time_total / 1e3}
        for e in prof.key_averages()
        if e.self_device_time_total > 0
    ]
    rows.sort(key=lambda r: -r["gpu_ms"])
    return sum(r["gpu_ms"] for r in rows), rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input-len", default="512")
    parser.add_argument("--output-len", default="128")
    parser.add_argument("--num-prompts", type=int, default=256)
    parser.add_argument("--async-scheduling", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", default="phases")
    parser.add_argument("--cprofile", action="store_true", help="also a cProfile of one whole run (host)")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)

    llm = LLM(
        model=args.model,
        load_format="dummy",
        max_model_len=2048,
        async_scheduling=args.async_scheduling,
    )
    engine = llm.engine
    seeds = iter(range(1000))

    def fresh() -> list[list[int]]:
        vocab = engine.arch.vocab_size
        return random_workload(args.num_prompts, args.input_len, args.output_len, vocab, next(seeds)).prompts

    work = random_workload(args.num_prompts, args.input_len, args.output_len, engine.arch.vocab_size)
    ceilings = measure_ceilings(engine.device, engine.dtype)
    floor = throughput_floor(
        engine.arch, work.prompt_lens, work.output_lens, engine.config.max_num_seqs, ceilings, 2
    )
    ones = [1] * len(work.prompts)
    timed(llm, fresh()[:8], [8] * 8)  # compile
    timed(llm, fresh(), ones)  # warm-up of the prefill shapes
    prefill_s = [timed(llm, fresh(), ones) for _ in range(2)]
    whole_s = [timed(llm, fresh(), work.output_lens) for _ in range(2)]
    traced = {"prefill_only": trace_summary(llm, WINDOWS[-3]), "whole": trace_summary(llm, WINDOWS[-1])}
    if args.cprofile:
        profiler = cProfile.Profile()
        prompts = fresh()
        profiler.enable()
        timed(llm, prompts, work.output_lens)
        profiler.disable()
        stats_text = io.StringIO()
        pstats.Stats(profiler, stream=stats_text).sort_stats("tottime").print_stats(35)
        (Path(args.out) / f"{args.name}-cprofile.txt").write_text(stats_text.getvalue())
    prefill_gpu_ms, prefill_kernels = kernel_table(llm, fresh(), ones)
    whole_gpu_ms, whole_kernels = kernel_table(llm, fresh(), work.output_lens)
    result = {
        **environment(),
        "model": args.model,
        "workload": work.describe(),
        "async_scheduling": args.async_scheduling,
        "prefill_only_s": prefill_s,
        "whole_s": whole_s,
        "decode_phase_s": min(whole_s) - min(prefill_s),
        "output_tokens_per_s": work.num_output_tokens / min(whole_s),
        "roofline": floor,
        "step_trace": traced,
        "prefill_gpu_ms_profiled": prefill_gpu_ms,
        "whole_gpu_ms_profiled": whole_gpu_ms,
        "prefill_kernels": prefill_kernels[:40],
        "whole_kernels": whole_kernels[:40],
    }
    out = Path(args.out)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    print(
        f"prefill only {min(prefill_s):.3f} s (floor {floor['prefill_floor_s']:.3f} s, "
        f"{floor['matmul_flops_per_s'] / 1e12:.0f} TFLOP/s); whole {min(whole_s):.3f} s "
        f"({result['output_tokens_per_s']:.0f} tok/s, roofline {floor['roofline_output_tokens_per_s']:.0f}); "
        f"decode phase {result['decode_phase_s']:.3f} s (floor {floor['decode_floor_s']:.3f} s)"
    )
    for name, summary in traced.items():
        for kind, k in summary.get("kinds", {}).items():
            print(f"trace {name}: {kind}: {k}")
    print(f"profiled GPU time: prefill only {prefill_gpu_ms:.1f} ms, whole {whole_gpu_ms:.1f} ms")
    for title, rows in (("prefill only", prefill_kernels), ("whole", whole_kernels)):
        print(f"-- {title}")
        for r in rows[:14]:
            print(f"{r['gpu_ms']:9.2f} ms {r['calls']:6d}  {r['name'][:80]}")


if __name__ == "__main__":
    main()
