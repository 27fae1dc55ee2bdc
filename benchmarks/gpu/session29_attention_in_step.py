"""Session 29: decode attention launches timed inside the whole decode step's graph.

Sessions 11-26 swept the decode kernel's launches alone (graph replays of the kernel), and several that
were faster alone were slower in the step (session 26: the 1B's 256-row TMA launch 6-17% faster alone,
1.5-3.9% slower in the step). This sweep times each launch where it runs: the engine's decode step,
recaptured with the launch swapped in, replayed with the last real step's inputs, in interleaved rounds.

For each (model, batch): one engine (dummy weights, ``--max-model-len 2048``, ``batch`` prompts of
``--context`` tokens), prefilled and stepped as ``bench decode`` does. Then per round, per variant: the
backend's ``paged_decode_attention`` is wrapped to force the variant's ``DecodeLaunch`` / splits, one
eager step warms and compiles it, a graph of the step is captured and replayed ``--replays`` times (CUDA
events, median). Its logits are compared with the engine's own plan's from the same round (max abs
difference, share of rows with the same argmax). The floor is ``bench decode``'s (weights + live K/V at
the measured copy bandwidth).

    python3 benchmarks/gpu/session29_attention_in_step.py OUT.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from typing import Any

import torch

from pagedllm.attention.triton import backend as triton_backend
from pagedllm.attention.triton import decode as triton_decode
from pagedllm.attention.triton.decode import DecodeLaunch
from pagedllm.bench import step_profile
from pagedllm.bench.environment import environment
from pagedllm.bench.roofline import decode_step_floor_s, measure_ceilings
from pagedllm.model.layers import skinny_linear

MODELS = ".gpuwork/shared_models"  # the carried copy of ../shared/models on the device

# name -> (DecodeLaunch keywords, num_splits); "engine" is the engine's own plan.
QWEN3_64 = {
    "engine": ({}, None),
    "kv1 s1 n32 w4 st3": ({"kv_heads_per_program": 1, "block_n": 32, "num_warps": 4, "num_stages": 3}, 1),
    "kv1 s1 n32 w4 st4": ({"kv_heads_per_program": 1, "block_n": 32, "num_warps": 4, "num_stages": 4}, 1),
    "kv1 s1 n16 w4 st4": ({"kv_heads_per_program": 1, "block_n": 16, "num_warps": 4, "num_stages": 4}, 1),
    "kv1 s1 n64 w4 st2": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 4, "num_stages": 2}, 1),
    "kv1 s1 n64 w8 st3": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 8, "num_stages": 3}, 1),
    "kv1 s1 n32 w2 st3": ({"kv_heads_per_program": 1, "block_n": 32, "num_warps": 2, "num_stages": 3}, 1),
    "kv1 s1 n64 w2 st3": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 2, "num_stages": 3}, 1),
    "kv1 s1 n64 w1 st3": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 1, "num_stages": 3}, 1),
    "kv1 s2 n64 w4 st3": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 4, "num_stages": 3}, 2),
    "kv1 s2 n32 w4 st3": ({"kv_heads_per_program": 1, "block_n": 32, "num_warps": 4, "num_stages": 3}, 2),
    "kv2 s1 n32 w4 st3": ({"kv_heads_per_program": 2, "block_n": 32, "num_warps": 4, "num_stages": 3}, 1),
    "kv2 s2 n32 w4 st3": ({"kv_heads_per_program": 2, "block_n": 32, "num_warps": 4, "num_stages": 3}, 2),
    "kv1 s1 carry n32 w4 st3": (
        {"kv_heads_per_program": 1, "block_n": 32, "num_warps": 4, "num_stages": 3, "carry_block_ids": True},
        1,
    ),
    "kv1 s1 carry n16 w4 st3": (
        {"kv_heads_per_program": 1, "block_n": 16, "num_warps": 4, "num_stages": 3, "carry_block_ids": True},
        1,
    ),
}
LLAMA1B_256 = {
    "engine": ({}, None),
    "kv2 s1 n32 w4 st3": ({"kv_heads_per_program": 2, "block_n": 32, "num_warps": 4, "num_stages": 3}, 1),
    "kv2 s1 n32 w4 st4": ({"kv_heads_per_program": 2, "block_n": 32, "num_warps": 4, "num_stages": 4}, 1),
    "kv2 s1 n64 w4 st4": ({"kv_heads_per_program": 2, "block_n": 64, "num_warps": 4, "num_stages": 4}, 1),
    "kv2 s1 n64 w4 st2": ({"kv_heads_per_program": 2, "block_n": 64, "num_warps": 4, "num_stages": 2}, 1),
    "kv2 s1 n64 w2 st3": ({"kv_heads_per_program": 2, "block_n": 64, "num_warps": 2, "num_stages": 3}, 1),
    "kv2 s1 n128 w4 st3": ({"kv_heads_per_program": 2, "block_n": 128, "num_warps": 4, "num_stages": 3}, 1),
    "kv2 s1 n64 w8 st3": ({"kv_heads_per_program": 2, "block_n": 64, "num_warps": 8, "num_stages": 3}, 1),
    "kv1 s1 carry n32 w4 st3": (
        {"kv_heads_per_program": 1, "block_n": 32, "num_warps": 4, "num_stages": 3, "carry_block_ids": True},
        1,
    ),
    "kv1 s1 carry n32 w2 st3": (
        {"kv_heads_per_program": 1, "block_n": 32, "num_warps": 2, "num_stages": 3, "carry_block_ids": True},
        1,
    ),
    "kv1 s1 n64 w4 st3": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 4, "num_stages": 3}, 1),
    "kv4 s1 n32 w4 st3": ({"kv_heads_per_program": 4, "block_n": 32, "num_warps": 4, "num_stages": 3}, 1),
    "kv4 s1 n64 w4 st3": ({"kv_heads_per_program": 4, "block_n": 64, "num_warps": 4, "num_stages": 3}, 1),
}
LLAMA1B_64 = {
    "engine": ({}, None),
    "kv1 s1 carry n32 w2 st3": (
        {"kv_heads_per_program": 1, "block_n": 32, "num_warps": 2, "num_stages": 3, "carry_block_ids": True},
        1,
    ),
    "kv1 s1 carry n32 w4 st4": (
        {"kv_heads_per_program": 1, "block_n": 32, "num_warps": 4, "num_stages": 4, "carry_block_ids": True},
        1,
    ),
    "kv1 s2 n64 w4 st3": ({"kv_heads_per_program": 1, "block_n": 64, "num_warps": 4, "num_stages": 3}, 2),
    "kv2 s1 n32 w4 st3": ({"kv_heads_per_program": 2, "block_n": 32, "num_warps": 4, "num_stages": 3}, 1),
    "kv2 s2 n32 w4 st3": ({"kv_heads_per_program": 2, "block_n": 32, "num_warps": 4, "num_stages": 3}, 2),
}
# Call 2: head dim 128 in 32-token tiles (the rule after call 1) against the 64-token tiles before, the
# engine's plan otherwise; "engine" runs the new rule, so it and "n32" are two runs of one launch.
TILE_AB = {
    "engine": ({}, None),
    "n64 (before)": ({"block_n": 64}, None),
    "n32": ({"block_n": 32}, None),
}
TILES_ONLY = {"n64 (before)": ({"block_n": 64}, None), "n32": ({"block_n": 32}, None)}
# Call 6: the engine's own graph (captured at start, in the ladder's shared pool) against a new capture of
# the same step: bench decode times the former, this script the latter.
GRAPHS = {"engine's graph": ({}, None), "new capture": ({}, None)}
# Call 8: Qwen3-0.6B's 64-row skinny plans (bm, bn, bk, split, warps, stages), each linear varied alone, in
# the step (with the short decode tiles). Its plans: qkv 64x32x256 split 1; o_proj 64x16x256 split 2;
# gate_up (gated, 6144 rows) 64x64x128 split 1; down 64x16x256 split 2; all 4 warps, 4 stages.
QKV, O_PROJ, GATE_UP, DOWN = (4096, 1024), (1024, 2048), (6144, 1024), (1024, 3072)
LINEARS_QWEN3_64 = {
    "engine": ({}, None, {}),
    "qkv 64x64x256 st3": ({}, None, {QKV: (64, 64, 256, 1, 4, 3)}),
    "qkv 64x32x128 st4": ({}, None, {QKV: (64, 32, 128, 1, 4, 4)}),
    "qkv 64x16x256 st4": ({}, None, {QKV: (64, 16, 256, 1, 4, 4)}),
    "qkv 64x32x256 split2": ({}, None, {QKV: (64, 32, 256, 2, 4, 4)}),
    "o_proj 64x16x256 split1": ({}, None, {O_PROJ: (64, 16, 256, 1, 4, 4)}),
    "o_proj 64x16x256 split4": ({}, None, {O_PROJ: (64, 16, 256, 4, 4, 4)}),
    "o_proj 64x32x256 split4": ({}, None, {O_PROJ: (64, 32, 256, 4, 4, 4)}),
    "o_proj 64x16x128 split2 st6": ({}, None, {O_PROJ: (64, 16, 128, 2, 4, 6)}),
    "gate_up 64x32x256 st4": ({}, None, {GATE_UP: (64, 32, 256, 1, 4, 4)}),
    "gate_up 64x128x64 st4 w8": ({}, None, {GATE_UP: (64, 128, 64, 1, 8, 4)}),
    "gate_up 64x64x64 st6": ({}, None, {GATE_UP: (64, 64, 64, 1, 4, 6)}),
    "down 64x16x256 split1": ({}, None, {DOWN: (64, 16, 256, 1, 4, 4)}),
    "down 64x16x256 split3": ({}, None, {DOWN: (64, 16, 256, 3, 4, 4)}),
    "down 64x32x256 split4": ({}, None, {DOWN: (64, 32, 256, 4, 4, 4)}),
    "down 64x16x128 split2 st6": ({}, None, {DOWN: (64, 16, 128, 2, 4, 6)}),
}
# Call 9: decode attention releasing the next kernel (PDL) after its loop instead of after its wait.
# Taken back; to rerun it, apply benchmarks/results/session29/late-release-attempt.diff first.
RELEASE = {"engine": ({}, None), "late release": ({}, None, {}, {"late_release": True})}
CASES = {
    **{
        f"release-{m}-{b}": (m, b, RELEASE)
        for m, b in [
            ("qwen3-0.6b", 64),
            ("qwen3-0.6b", 256),
            ("llama-3.2-1b", 64),
            ("llama-3.2-1b", 256),
            ("llama-3.1-8b", 64),
        ]
    },
    "linears-qwen3-0.6b-64": ("qwen3-0.6b", 64, LINEARS_QWEN3_64),
    "qwen3-0.6b-64": ("qwen3-0.6b", 64, QWEN3_64),
    "llama-3.2-1b-256": ("llama-3.2-1b", 256, LLAMA1B_256),
    "llama-3.2-1b-64": ("llama-3.2-1b", 64, LLAMA1B_64),
    "ab-qwen3-0.6b-64": ("qwen3-0.6b", 64, TILE_AB),
    "ab-qwen3-0.6b-128": ("qwen3-0.6b", 128, TILE_AB),
    "ab-qwen3-0.6b-256": ("qwen3-0.6b", 256, TILE_AB),
    "ab-llama-3.1-8b-64": ("llama-3.1-8b", 64, TILE_AB),
    "ab-llama-3.1-8b-256": ("llama-3.1-8b", 256, TILE_AB),
    "ab-qwen2.5-7b-64": ("qwen2.5-7b", 64, TILE_AB),
    # Call 3: where 32-token tiles stop paying (Qwen3-0.6B was 8% slower with them at 128 rows)
    **{f"tiles-qwen3-0.6b-{b}": ("qwen3-0.6b", b, TILES_ONLY) for b in (32, 48, 64, 80, 96, 112)},
    "tiles-llama-3.1-8b-128": ("llama-3.1-8b", 128, TILES_ONLY),
    "tiles-qwen2.5-7b-128": ("qwen2.5-7b", 128, TILES_ONLY),
    "graphs-qwen3-0.6b-64": ("qwen3-0.6b", 64, GRAPHS),
    "graphs-llama-3.2-1b-64": ("llama-3.2-1b", 64, GRAPHS),
}


def compiled_decode_kernels() -> list[dict[str, Any]]:
    """Registers, spills and shared memory of every compiled decode kernel (Triton's JIT cache)."""
    rows = []
    for entry in getattr(triton_decode._decode_split_kernel, "device_caches", {}).values():
        for key, kernel in entry[0].items():
            meta = kernel.metadata
            rows.append(
                {
                    "n_regs": getattr(kernel, "n_regs", None),
                    "n_spills": getattr(kernel, "n_spills", None),
                    "shared": getattr(meta, "shared", None),
                    "num_warps": getattr(meta, "num_warps", None),
                    "num_stages": getattr(meta, "num_stages", None),
                    "key": str(key)[-400:],
                }
            )
    return rows


def prepared_engine(model: str, batch: int, context: int) -> tuple[Any, Any, list[int]]:
    """An engine with ``batch`` sequences decoding, as ``bench decode`` leaves it, and its last step's
    context lengths (the graph's static inputs hold that step)."""
    from pagedllm.llm import LLM
    from pagedllm.sampling_params import SamplingParams

    llm = LLM(model=model, load_format="dummy", max_model_len=2048, max_num_seqs=batch)
    engine = llm.engine
    params = SamplingParams(temperature=0.0, max_tokens=engine.max_model_len - context, ignore_eos=True)
    gen = torch.Generator().manual_seed(batch)
    for i in range(batch):
        prompt = torch.randint(100, engine.arch.vocab_size, (context,), generator=gen).tolist()
        tracker = engine.make_request(prompt, params, str(i))
        tracker.stream_outputs = False
        engine.add_tracked_request(tracker)
    while any(r.num_computed_tokens < len(r.prompt_token_ids) for r in engine.scheduler.running) or (
        engine.scheduler.waiting
    ):
        engine.step()
    for _ in range(8):
        contexts = [r.num_computed_tokens + 1 for r in engine.scheduler.running]
        engine.step()
    torch.cuda.synchronize()
    return llm, engine, contexts


def force_launch(launch: DecodeLaunch | None, splits: int | None) -> None:
    """The backend's decode launches take ``launch`` and ``splits`` (None: the engine's own plan)."""
    original = triton_decode.paged_decode_attention

    def forced(*args: Any, num_splits: int | None = None, decodes_only: bool = False, **_: Any) -> None:
        if launch is None:
            return original(*args, num_splits=num_splits, decodes_only=decodes_only)
        return original(*args, num_splits=splits, decodes_only=decodes_only, launch=launch)

    triton_backend.paged_decode_attention = forced  # type: ignore[assignment]


ORIGINAL_SKINNY_CONFIG = skinny_linear.skinny_config


def force_linears(plans: dict[tuple[int, int], tuple[int, ...]]) -> None:
    """Steps of up to 64 rows take these skinny plans, (bm, bn, bk, split, warps, stages) by weight shape
    (a gated product's both halves); every other weight its own plan."""

    def forced(
        n: int, k: int, smem_budget: int = skinny_linear.SMEM_BUDGET, rows: int = skinny_linear.NARROW_ROWS
    ) -> Any:
        if rows <= skinny_linear.NARROW_ROWS and (n, k) in plans:
            bm, bn, bk, split, warps, stages = plans[n, k]
            return skinny_linear.SkinnyConfig(bm, bn, bk, split, num_warps=warps, num_stages=stages, tma=True)
        return ORIGINAL_SKINNY_CONFIG(n, k, smem_budget, rows)

    skinny_linear.skinny_config = forced  # type: ignore[assignment]
    skinny_linear.gated_skinny_config.cache_clear()
    skinny_linear.rotary_skinny_config.cache_clear()


def capture_step(graphs: Any, batch: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    with torch.inference_mode():
        graphs._forward(batch)  # compiles the variant and grows the attention workspace first
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = graphs._forward(batch)
    torch.cuda.synchronize()
    return graph, logits


def replay_ms(graph: torch.cuda.CUDAGraph, replays: int) -> float:
    graph.replay()
    times = []
    for _ in range(replays):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end))
    return statistics.median(times)


def sweep(
    model: str, batch: int, variants: dict, rounds: int, replays: int, context: int, profile: bool = False
) -> dict[str, Any]:
    llm, engine, contexts = prepared_engine(model, batch, context)
    ceilings = measure_ceilings(engine.device, engine.dtype)
    dtype_bytes = torch.empty((), dtype=engine.dtype).element_size()
    floor_ms = decode_step_floor_s(engine.arch, contexts, ceilings, dtype_bytes) * 1e3
    graphs = engine.runner.graphs
    rows: dict[str, dict[str, Any]] = {
        name: {
            "launch": kw,
            "num_splits": s,
            "linears": {f"{n}x{k}": plan for (n, k), plan in (rest[0] if rest else {}).items()},
            "gpu_ms": [],
            "errors": [],
        }
        for name, (kw, s, *rest) in variants.items()
    }
    for r in range(rounds):
        reference = None
        for name, (kw, splits, *rest) in variants.items():
            force_launch(DecodeLaunch(**kw) if kw else None, splits)
            force_linears(rest[0] if rest else {})
            triton_decode.LATE_RELEASE = bool(rest[1].get("late_release")) if len(rest) > 1 else False
            try:
                if name == "engine's graph":  # the graph the engine captured at start, not a new capture
                    size = next(s for s in graphs.batch_sizes if s >= batch)
                    graph, logits = graphs._graphs[size], graphs._logits[size][:batch]
                else:
                    graph, logits = capture_step(graphs, batch)
            except Exception as exc:  # a launch that does not compile or fit: recorded, not fatal
                rows[name]["errors"].append(f"{type(exc).__name__}: {str(exc)[:300]}")
                print(f"round {r} {name}: {type(exc).__name__}", flush=True)
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
            rows[name]["same_argmax"] = float((out.argmax(-1) == reference.argmax(-1)).float().mean())
            print(f"round {r} {name:28s} {ms:.4f} ms  x floor {ms / floor_ms:.3f}", flush=True)
            del graph, logits
    force_launch(None, None)
    force_linears({})
    plan = triton_decode.decode_variant(
        batch, engine.arch.num_key_value_heads, engine.arch.head_dim, 2048, engine.device
    )
    result = {
        "model": model,
        "batch": batch,
        "context": context,
        "floor_ms": floor_ms,
        "copy_bytes_per_s": ceilings.copy_bytes_per_s,
        "engine_plan": plan._asdict(),
        "engine_tiles": triton_decode.default_decode_launch(
            engine.arch.head_dim, graphs.block_size, plan.kv_per_prog, plan.single
        )._asdict(),
        "rows": rows,
        "compiled": compiled_decode_kernels(),
    }
    del llm, engine, graphs
    torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--models-dir", default=MODELS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replays", type=int, default=30)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--profile", action="store_true", help="the last round's chains (bench.step_profile)")
    args = parser.parse_args()
    out: dict[str, Any] = {**environment(), "cases": {}}
    for case in args.cases:
        model, batch, variants = CASES[case]
        print(f"== {case}", flush=True)
        res = sweep(
            f"{args.models_dir}/{model}.json",
            batch,
            variants,
            args.rounds,
            args.replays,
            args.context,
            args.profile,
        )
        out["cases"][case] = res
        with open(args.output, "w") as f:  # after every case: a later one may run out of time
            json.dump(
                out,
                f,
                indent=1,
                default=str,
            )
        ranked = sorted(
            ((statistics.median(v["gpu_ms"]), k) for k, v in res["rows"].items() if v["gpu_ms"]),
            key=lambda t: t[0],
        )
        for ms, name in ranked:
            print(f"  {name:28s} {ms:.4f} ms  x floor {ms / res['floor_ms']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
