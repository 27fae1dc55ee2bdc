"""Session 32: decode attention prefetching the next kernels' weights into L2, timed in whole steps.

Slower in every step measured, so the code was taken back: apply
``benchmarks/results/session32/l2-prefetch-attempt.diff`` before running this again (it adds
``pagedllm/worker/l2_prefetch.py`` and the decode kernel's prefetch and K/V eviction arguments).

For each (model, batch): one engine prepared as session 29's harness does (dummy weights, prompts of
``--context`` tokens, prefilled and stepped). Per round, per variant: ``worker/l2_prefetch.plan`` with the
variant's budget, ``decode.PREFETCH_AT_END`` and ``decode.KV_EVICT`` set, the step captured as a graph and
replayed ``--replays`` times (CUDA events, median). Logits are compared with the first variant's (the
prefetch changes no value). The last round's chains (``bench.step_profile``) say which kernels moved.

    python3 benchmarks/gpu/session32_l2_prefetch.py OUT.json [--cases ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from typing import Any

import torch
from session29_attention_in_step import capture_step, prepared_engine, replay_ms

from pagedllm.attention.triton import decode as triton_decode
from pagedllm.bench import step_profile
from pagedllm.bench.environment import environment
from pagedllm.bench.roofline import decode_step_floor_s, measure_ceilings
from pagedllm.worker import l2_prefetch

MODELS = ".gpuwork/shared_models"

# name -> (MB prefetched a layer, after the loop, K/V loads' eviction policy)
VARIANTS = {
    "off": (0.0, False, ""),
    "kv evict_first": (0.0, False, "evict_first"),
    "pf 24 start": (24.0, False, "evict_first"),
    "pf 24 end": (24.0, True, "evict_first"),
    "pf 24 start, no kv hint": (24.0, False, ""),
    "pf 12 start": (12.0, False, "evict_first"),
    "pf 40 start": (40.0, False, "evict_first"),
}
CASES = {
    "qwen3-0.6b-64": ("qwen3-0.6b", 64),
    "llama-3.2-1b-256": ("llama-3.2-1b", 256),
    "llama-3.2-1b-64": ("llama-3.2-1b", 64),
    "qwen3-0.6b-256": ("qwen3-0.6b", 256),
    "llama-3.1-8b-64": ("llama-3.1-8b", 64),
}


def set_variant(engine: Any, budget_mb: float, at_end: bool, kv_evict: str) -> None:
    triton_decode.PREFETCH_AT_END = at_end
    triton_decode.KV_EVICT = kv_evict
    l2_prefetch.plan(engine.runner.model, engine.runner.kv_caches, budget_mb)


def decode_ptx_hints() -> dict[str, int]:
    """How often the compiled decode kernels' PTX names each cache hint (are the hints really there?)."""
    counts: dict[str, int] = {}
    for entry in getattr(triton_decode._decode_split_kernel, "device_caches", {}).values():
        for kernel in entry[0].values():
            ptx = kernel.asm.get("ptx", "")
            for hint in ("evict_first", "evict_last", "prefetch.global.L2", "createpolicy"):
                counts[hint] = counts.get(hint, 0) + ptx.count(hint)
    return counts


def sweep(
    model: str, batch: int, variants: dict, rounds: int, replays: int, context: int, profile: bool
) -> dict:
    llm, engine, contexts = prepared_engine(model, batch, context)
    ceilings = measure_ceilings(engine.device, engine.dtype)
    dtype_bytes = torch.empty((), dtype=engine.dtype).element_size()
    floor_ms = decode_step_floor_s(engine.arch, contexts, ceilings, dtype_bytes) * 1e3
    graphs = engine.runner.graphs
    rows: dict[str, dict[str, Any]] = {
        name: {"setting": v, "gpu_ms": [], "errors": []} for name, v in variants.items()
    }
    for r in range(rounds):
        reference = None
        for name, (budget, at_end, evict) in variants.items():
            set_variant(engine, budget, at_end, evict)
            try:
                graph, logits = capture_step(graphs, batch)
            except Exception as exc:  # recorded, not fatal
                rows[name]["errors"].append(f"{type(exc).__name__}: {str(exc)[:300]}")
                print(f"round {r} {name}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                continue
            ms = replay_ms(graph, replays)
            if profile and r == rounds - 1:
                links = step_profile.profile_graph_replays(graph)
                rows[name]["chain"] = [dataclasses.asdict(link) for link in links]
            out = logits.float().clone()
            if reference is None:
                reference = out
            rows[name]["gpu_ms"].append(ms)
            rows[name]["max_abs_logit_diff"] = float((out - reference).abs().max())
            print(f"round {r} {name:26s} {ms:.4f} ms  x floor {ms / floor_ms:.3f}", flush=True)
            del graph, logits
    set_variant(engine, 0.0, False, "")
    result = {
        "model": model,
        "batch": batch,
        "context": context,
        "floor_ms": floor_ms,
        "copy_bytes_per_s": ceilings.copy_bytes_per_s,
        "rows": rows,
        "ptx_hints": decode_ptx_hints(),
    }
    del llm, engine, graphs
    torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--cases", nargs="+", default=list(CASES)[:3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--models-dir", default=MODELS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replays", type=int, default=30)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--profile", action="store_true", help="the last round's chains (bench.step_profile)")
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants}
    out: dict[str, Any] = {**environment(), "cases": {}}
    for case in args.cases:
        model, batch = CASES[case]
        print(f"== {case}", flush=True)
        path = f"{args.models_dir}/{model}.json"
        res = sweep(path, batch, variants, args.rounds, args.replays, args.context, args.profile)
        out["cases"][case] = res
        with open(args.output, "w") as f:  # after every case: a later one may run out of time
            json.dump(out, f, indent=1, default=str)
        print(f"  ptx hints: {res['ptx_hints']}")
        for name, row in res["rows"].items():
            if row["gpu_ms"]:
                ms = statistics.median(row["gpu_ms"])
                ratio, diff = ms / res["floor_ms"], row["max_abs_logit_diff"]
                print(f"  {name:26s} {ms:.4f} ms  x floor {ratio:.3f}  diff {diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
