"""Session 30: where the 1B workload's run-to-run spread comes from (57.9-67.9% of its roofline, session 28).

`bench throughput` times one run a process: 256 x (512 in, 128 out), about a second. This builds the
engine as it does, then times the same workload shape ``--repeats`` times in the one process (a new
workload seed each time, so no prompt block is in the prefix cache), with the engine's step trace on
(``PAGEDLLM_STEP_TRACE``). For every run it reports the output tokens/s and fraction of the roofline,
and from the trace: the steps that computed prompt tokens and the pure decode steps (count and summed
call time), the slowest call, and the time in Python's garbage collector; beside each run the GPU's SM
clock, power and temperature before and after (``nvidia-smi``).

``PAGEDLLM_STEP_TRACE=/tmp/trace python3 session30_throughput_spread.py MODEL.json OUT.json --repeats 6``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import torch

from pagedllm.bench.environment import environment
from pagedllm.bench.roofline import measure_ceilings, throughput_floor
from pagedllm.bench.throughput import WARMUP_SEED, run_pagedllm
from pagedllm.bench.workload import random_workload
from pagedllm.llm import LLM
from pagedllm.sampling_params import SamplingParams


def gpu_state() -> str:  # "" where nvidia-smi is missing
    query = "--query-gpu=clocks.sm,power.draw,temperature.gpu"
    try:
        out = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.strip()


def trace_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(rows: list[dict]) -> dict:
    prefill = [r for r in rows if r.get("prefill_tokens", 0) > 0]
    decode = [r for r in rows if r.get("prefill_tokens", 0) == 0 and r.get("tokens", 0) > 0]
    slowest = max(rows, key=lambda r: r["ms"]) if rows else {}
    return {
        "steps": len(rows),
        "prefill_steps": len(prefill),
        "prefill_ms": sum(r["ms"] for r in prefill),
        "prefill_tokens": sum(r["prefill_tokens"] for r in prefill),
        "decode_steps": len(decode),
        "decode_ms": sum(r["ms"] for r in decode),
        "other_ms": sum(r["ms"] for r in rows if r not in prefill and r not in decode),
        "gc_ms": sum(r.get("gc_ms", 0.0) for r in rows),
        "slowest_ms": slowest.get("ms"),
        "slowest_tokens": slowest.get("tokens"),
        "prefill_step_ms": [round(r["ms"], 2) for r in prefill],
        "prefill_phases_ms": _phase_sums(prefill),
        "decode_phases_ms": _phase_sums(decode),
    }


def _phase_sums(rows: list[dict]) -> dict:
    """The summed milliseconds of each phase the engine marked (launch, schedule, collect, ...)."""
    sums: dict = {}
    for row in rows:
        for phase, ms in row.get("phases", {}).items():
            sums[phase] = round(sums.get(phase, 0.0) + ms, 3)
    return sums


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    trace_base = os.environ.get("PAGEDLLM_STEP_TRACE")
    if not trace_base:
        sys.exit("set PAGEDLLM_STEP_TRACE")
    llm = LLM(model=args.model, load_format="dummy", max_model_len=2048)
    engine = llm.engine
    trace = Path(f"{trace_base}.{os.getpid()}")
    ceilings = measure_ceilings(engine.device, engine.dtype)
    runs = []
    for i in range(args.repeats):
        workload = random_workload(256, "512", "128", engine.arch.vocab_size, seed=100 + i)
        floor = throughput_floor(engine.arch, workload.prompt_lens, workload.output_lens,
                                 engine.config.max_num_seqs, ceilings, 2)  # fmt: skip
        if i == 0:  # as `bench throughput` warms up: 8 prompts of the workload's lengths, shuffled
            warm = [random.Random(WARMUP_SEED).sample(p, len(p)) for p in workload.prompts[:8]]
            llm.generate(warm, SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True), use_tqdm=False)
        before = gpu_state()
        seen = len(trace_rows(trace)) if trace.exists() else 0
        ours = run_pagedllm(llm, workload, 1, 0)
        after = gpu_state()
        rows = trace_rows(trace)[seen:]
        fraction = ours["output_tokens_per_s"] / floor["roofline_output_tokens_per_s"]
        run = {"run": i, "seconds": ours["seconds"], "output_tokens_per_s": ours["output_tokens_per_s"],
               "fraction_of_roofline": fraction, "gpu_before": before, "gpu_after": after,
               "trace": summarize(rows)}  # fmt: skip
        runs.append(run)
        t = run["trace"]
        print(f"run {i}: {ours['seconds']:.3f} s {ours['output_tokens_per_s']:.0f} tok/s {fraction:.1%} | "
              f"prefill {t['prefill_steps']} steps {t['prefill_ms']:.0f} ms, decode {t['decode_steps']} "
              f"steps {t['decode_ms']:.0f} ms, other {t['other_ms']:.0f} ms, gc {t['gc_ms']:.1f} ms, slowest "
              f"{t['slowest_ms']:.1f} ms | {before} -> {after}", flush=True)  # fmt: skip
        print(f"  prefill phases {t['prefill_phases_ms']}", flush=True)
        print(f"  decode phases {t['decode_phases_ms']}", flush=True)
    result = {**environment(), "model": args.model, "ceilings": floor, "runs": runs}
    Path(args.out).write_text(json.dumps(result, indent=1))
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
