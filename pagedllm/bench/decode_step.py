"""``pagedllm bench decode``: one engine decode step at a fixed batch, against its bandwidth floor, and
where its wall time goes (scheduling, the runner, output processing; the GPU's share from CUDA events).

For each batch size: ``batch`` requests with ``context`` prompt tokens are prefilled, then
``steps`` pure-decode steps of the whole batch are timed one by one. Reported per step (medians):
- ``step_ms``: ``LLMEngine.step()`` wall time; ``floor_ms``: every weight byte plus every live K/V byte
  once at the measured copy bandwidth; ``x_floor`` their ratio.
- ``schedule_ms``, ``execute_ms`` (inputs, replay or forward, sampling: ends on the token read-back),
  ``rest_ms`` (scheduler update, detokenize, stop checks, outputs); synchronous steps only (with async
  scheduling the parts overlap the device and each other: None).
- ``gpu_ms``: a replay of the step's captured graph alone, timed with CUDA events (the GPU's work);
  ``host_overhead_share`` = 1 - gpu_ms / step_ms: the share of the step the GPU waits for Python.
With ``--profile-dir`` a torch.profiler trace summary of a few steps is written there as text, and on
CUDA the step graph's kernels charged with the time each adds to the chain (``bench.step_profile``):
``decode-chain-b{batch}.txt`` / ``.json``, summed per kernel in the row's ``chain_by_kernel``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from pagedllm.bench import step_profile
from pagedllm.bench.environment import environment, write_json
from pagedllm.bench.roofline import decode_step_floor_s, measure_ceilings


def add_decode_parser(sub: Any, add_engine_args: Any) -> None:
    p = sub.add_parser("decode", help="decode step time at fixed batch sizes vs the bandwidth floor")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    p.add_argument("--context", type=int, default=512, help="prompt tokens per sequence")
    p.add_argument("--steps", type=int, default=32, help="timed decode steps per batch size")
    p.add_argument("--profile-dir", default=None, help="write a torch.profiler summary per batch size")
    p.add_argument("--output-json", default=None)
    add_engine_args(p)


class _Timed:
    """Wraps a bound method and records the wall time of each call."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.times: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - start)


WARM_UP_STEPS = 4  # pure-decode steps run before the timed ones


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def bench_batch(args: argparse.Namespace, engine_kwargs: dict[str, Any], batch: int) -> dict[str, Any]:
    from pagedllm.llm import LLM
    from pagedllm.sampling_params import SamplingParams

    kwargs = dict(engine_kwargs, max_num_seqs=batch)
    llm = LLM(**kwargs)
    engine = llm.engine
    device = engine.device
    ceilings = measure_ceilings(device, engine.dtype)
    dtype_bytes = torch.empty((), dtype=engine.dtype).element_size()
    if args.context + WARM_UP_STEPS + args.steps >= engine.max_model_len:
        raise ValueError(
            f"--context {args.context} plus {WARM_UP_STEPS} warm-up and {args.steps} timed decode steps does "
            f"not fit in max_model_len {engine.max_model_len}: lower --context or --steps, or raise "
            "--max-model-len"
        )
    # NOTE: as long as the context allows: the first sequences decode while the last ones still prefill.
    params = SamplingParams(temperature=0.0, max_tokens=engine.max_model_len - args.context, ignore_eos=True)
    gen = torch.Generator().manual_seed(batch)
    for i in range(batch):
        prompt = torch.randint(100, engine.arch.vocab_size, (args.context,), generator=gen).tolist()
        tracker = engine.make_request(prompt, params, str(i))
        tracker.stream_outputs = False  # as LLM.generate: outputs only for finished requests
        engine.add_tracked_request(tracker)
    # Prefill (and the first decode steps, which also warm up) until every sequence decodes.
    while any(r.num_computed_tokens < len(r.prompt_token_ids) for r in engine.scheduler.running) or (
        engine.scheduler.waiting
    ):
        engine.step()
    for _ in range(WARM_UP_STEPS):
        engine.step()

    is_async = engine.async_scheduling
    schedule = _Timed(engine.scheduler.schedule)
    execute = _Timed(engine.runner.execute)
    if not is_async:
        engine.scheduler.schedule = schedule  # type: ignore[method-assign]
        engine.runner.execute = execute  # type: ignore[method-assign]
    num_ahead = engine.num_steps_scheduled_ahead
    step_times, floors = [], []
    for _ in range(args.steps):
        contexts = [r.num_computed_tokens + 1 for r in engine.scheduler.running]
        if len(contexts) != batch:
            raise RuntimeError(f"{len(contexts)} sequences running, expected {batch}")
        floors.append(decode_step_floor_s(engine.arch, contexts, ceilings, dtype_bytes))
        start = time.perf_counter()
        engine.step()
        step_times.append(time.perf_counter() - start)

    num_ahead = engine.num_steps_scheduled_ahead - num_ahead
    if is_async and num_ahead != args.steps:
        raise RuntimeError(f"only {num_ahead} of {args.steps} timed steps were scheduled ahead")
    rest = (
        []
        if is_async
        else [s - a - b for s, a, b in zip(step_times, schedule.times, execute.times, strict=True)]
    )
    gpu_ms = None
    graphs = engine.runner.graphs
    if graphs is not None and device.type == "cuda":
        # The last step's buffers are still loaded: replaying its graph times the GPU work alone.
        size = next(s for s in graphs.batch_sizes if s >= batch)
        graph = graphs._graphs[size]
        times = []
        for _ in range(20):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end) / 1e3)
        gpu_ms = _median_ms(times)
    chain = None
    if args.profile_dir and device.type == "cuda":
        _profile(engine, Path(args.profile_dir) / f"decode-profile-b{batch}.txt")
        if graphs is not None:
            chain = _profile_chain(graph, Path(args.profile_dir) / f"decode-chain-b{batch}")

    step_ms = _median_ms(step_times)
    floor_ms = _median_ms(floors)
    row = {
        "batch": batch,
        "context": args.context,
        "step_ms": step_ms,
        "floor_ms": floor_ms,
        "x_floor": step_ms / floor_ms,
        "async_scheduling": is_async,
        "schedule_ms": None if is_async else _median_ms(schedule.times),
        "execute_ms": None if is_async else _median_ms(execute.times),
        "rest_ms": None if is_async else _median_ms(rest),
        "gpu_ms": gpu_ms,
        "gpu_x_floor": None if gpu_ms is None else gpu_ms / floor_ms,
        "host_overhead_share": None if gpu_ms is None else 1 - gpu_ms / step_ms,
        "copy_bytes_per_s": ceilings.copy_bytes_per_s,
        "cuda_graphs": bool(graphs),
        "chain_by_kernel": chain,
    }
    # NOTE: the timing wrappers make reference cycles (scheduler -> wrapper -> bound method): collect
    # them, or the next batch size's engine sizes its KV cache around this one's.
    del llm, engine, schedule, execute, graphs
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def _profile(engine: Any, path: Path) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            engine.step()
        torch.cuda.synchronize()
    path.parent.mkdir(parents=True, exist_ok=True)
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=60)
    cpu_table = prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60
    )
    path.write_text(f"5 decode steps\n\n-- by GPU time --\n{table}\n\n-- by CPU time --\n{cpu_table}\n")


def _profile_chain(graph: Any, stem: Path) -> list[dict[str, Any]]:
    """The step graph's kernels charged with the time each adds (``bench.step_profile``): a text table
    and the whole chain, position by position, as JSON beside it."""
    links = step_profile.profile_graph_replays(graph)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".txt").write_text(step_profile.format_table(links) + "\n")
    stem.with_suffix(".json").write_text(json.dumps([dataclasses.asdict(link) for link in links], indent=0))
    return step_profile.by_kernel(links)


def cmd_decode(args: argparse.Namespace, engine_kwargs: dict[str, Any]) -> int:
    rows = [bench_batch(args, engine_kwargs, b) for b in args.batch_sizes]
    print(
        f"{'batch':>6}{'step ms':>9}{'floor':>8}{'x floor':>8}{'gpu ms':>8}{'gpu/fl':>7}{'host %':>7}"
        f"{'sched':>7}{'exec':>7}{'rest':>7}"
    )
    for r in rows:
        gpu = "-" if r["gpu_ms"] is None else f"{r['gpu_ms']:.3f}"
        gpu_x = "-" if r["gpu_x_floor"] is None else f"{r['gpu_x_floor']:.2f}"
        host = "-" if r["host_overhead_share"] is None else f"{r['host_overhead_share']:.0%}"
        parts = "".join(
            f"{'-' if r[k] is None else format(r[k], '.2f'):>7}"
            for k in ("schedule_ms", "execute_ms", "rest_ms")
        )
        print(
            f"{r['batch']:>6}{r['step_ms']:>9.3f}{r['floor_ms']:>8.3f}{r['x_floor']:>8.2f}{gpu:>8}{gpu_x:>7}"
            f"{host:>7}{parts}"
        )
    if args.output_json:
        result = {
            **environment(),
            "benchmark": "decode-step",
            "model": engine_kwargs.get("model"),
            "rows": rows,
        }
        print(f"written: {write_json(args.output_json, result)}")
    return 0
