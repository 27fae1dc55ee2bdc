"""``pagedllm simulate`` and ``pagedllm kv-size``: argument parsing and output; the work is in study.py."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from pagedllm.core.kv_policy import KV_POLICIES


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _request_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    # NOTE: `not value > 0` refuses NaN too.
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 requests per second (inf: all at once), got {text}")
    return value


def _memory_size(text: str) -> int:
    from pagedllm.sim.models import parse_memory_size

    try:
        return parse_memory_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_simulate_parser(sub: Any) -> None:
    from pagedllm.sim.models import known_model_names

    sim = sub.add_parser(
        "simulate",
        help="replay a workload through the real scheduler and KV cache manager (no model): memory report",
        description="Replays a workload through pagedllm's scheduler and KV cache manager with a simulated "
        "model that produces token counts, and reports where the KV memory goes, per step and summarized.",
    )
    sim.add_argument(
        "--workload",
        default="seed-memory",
        help="seed-memory, shared-prefix, synthetic, or a trace file (.json or .csv with prompt_len, "
        "output_len and optional arrival_time in seconds)",
    )
    sim.add_argument(
        "--model",
        default="llama-2-7b",
        help=f"a config.json path or one of: {', '.join(known_model_names())}",
    )
    sim.add_argument(
        "--dtype", default="auto", help="KV dtype: auto (the config's), float32, bfloat16, float16"
    )
    pool = sim.add_mutually_exclusive_group()
    pool.add_argument(
        "--kv-memory",
        type=_memory_size,
        default=None,
        help="KV pool size, e.g. 16GiB or 500MB (default 16GiB); the pool is the whole blocks that fit",
    )
    pool.add_argument("--num-blocks", type=_positive_int, default=None, help="KV pool size in blocks")
    sim.add_argument("--block-size", type=_positive_int, default=16)
    sim.add_argument("--max-model-len", type=_positive_int, default=2048)
    sim.add_argument("--max-num-seqs", type=_positive_int, default=256)
    sim.add_argument("--max-num-batched-tokens", type=_positive_int, default=None)
    sim.add_argument("--no-chunked-prefill", action="store_true")
    sim.add_argument("--no-prefix-caching", action="store_true", help="paged policy without the prefix cache")
    sim.add_argument(
        "--kv-policy",
        nargs="+",
        choices=KV_POLICIES,
        default=["contiguous", "paged"],
        help="policies to compare",
    )
    sim.add_argument("--batch-sizes", type=_int_list, default=(), help="seed-memory: e.g. 10,25,50")
    sim.add_argument(
        "--num-requests", type=_int_list, default=(), help="shared-prefix / synthetic: e.g. 10,1000"
    )
    sim.add_argument(
        "--request-rate",
        type=_request_rate,
        default=20.0,
        help="synthetic: Poisson arrivals, requests per second (> 0; inf: all arrive at once)",
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--block-map-step",
        default="peak",
        help="step of the block map: an index, 'peak' (most blocks), or 'none'",
    )
    sim.add_argument("--json", dest="json_path", default=None, help="write the report as JSON here")
    sim.add_argument(
        "--markdown", dest="markdown_path", default=None, help="write the tables as markdown here"
    )
    sim.add_argument(
        "--plots", dest="plots_dir", default=None, help="write PNG pictures (+ their numbers) here"
    )
    sim.add_argument("--no-steps", action="store_true", help="leave the per-step series out of the JSON")
    sim.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sim.set_defaults(func=cmd_simulate)


def _missing_block_maps(runs: list[dict[str, Any]], step: int | str | None) -> list[str]:
    """A line per run too short to have the step ``--block-map-step`` names (its picture is left out)."""
    if not isinstance(step, int):
        return []
    return [
        f"{run.get('variant', '')} {run.get('label', '')}: no block map, --block-map-step={step} is past "
        f"its {run['summary']['num_steps']} steps"
        for run in runs
        if "block_map" not in run and run["summary"]["num_steps"] <= step
    ]


def cmd_simulate(args: argparse.Namespace) -> int:
    from pagedllm.report.markdown import rejections, report_markdown
    from pagedllm.sim.study import SimulateOptions, simulate_report

    text: str = args.block_map_step
    step: int | str | None = None if text == "none" else text
    if text not in ("none", "peak"):
        try:
            step = int(text)
        except ValueError:
            step = -1
        if step < 0:
            raise ValueError(f"--block-map-step={text!r}: give a step index (>= 0), 'peak' or 'none'")
    options = SimulateOptions(
        workload=args.workload,
        model=args.model,
        dtype=args.dtype,
        kv_memory_bytes=args.kv_memory,
        num_blocks=args.num_blocks,
        block_size=args.block_size,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        enable_chunked_prefill=not args.no_chunked_prefill,
        enable_prefix_caching=not args.no_prefix_caching,
        policies=tuple(dict.fromkeys(args.kv_policy)),
        batch_sizes=args.batch_sizes,
        num_requests=args.num_requests,
        request_rate=args.request_rate,
        seed=args.seed,
        block_map_step=step,
        include_steps=not args.no_steps,
        command=shlex.join(["pagedllm", *getattr(args, "argv", sys.argv[1:])]),
    )

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"simulating {line}", file=sys.stderr, flush=True)

    report = simulate_report(options, progress)
    for line in [*rejections(report["runs"]), *_missing_block_maps(report["runs"], step)]:
        print(f"warning: {line}", file=sys.stderr)
    markdown = report_markdown(report)
    print(markdown)
    if args.json_path:
        _write(Path(args.json_path), json.dumps(report) + "\n")
    if args.markdown_path:
        _write(Path(args.markdown_path), markdown)
    if args.plots_dir:
        from pagedllm.report.plots import write_plots

        name = report["workload"]["name"]
        prefix = name if name != "trace" else Path(args.workload).stem
        try:
            paths = write_plots(report, Path(args.plots_dir), prefix)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for path in paths:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def add_kv_size_parser(sub: Any) -> None:
    kv = sub.add_parser("kv-size", help="KV cache bytes per token and tokens per GiB of a model")
    kv.add_argument(
        "models", nargs="*", metavar="MODEL", help="config.json paths or known names (default: all known)"
    )
    kv.add_argument("--dtype", default="auto", help="auto (the config's dtype), float32, bfloat16, float16")
    kv.add_argument("--block-size", type=_positive_int, default=16)
    kv.add_argument("--json", action="store_true", help="print JSON instead of a table")
    kv.set_defaults(func=cmd_kv_size)


def cmd_kv_size(args: argparse.Namespace) -> int:
    from pagedllm.report.markdown import table
    from pagedllm.sim.models import format_bytes, known_model_names, kv_size, load_model_spec

    sizes = [
        kv_size(load_model_spec(m), args.dtype, args.block_size) for m in args.models or known_model_names()
    ]
    if args.json:
        print(json.dumps([s.as_dict() for s in sizes], indent=1))
        return 0
    rows = [
        [
            s.model,
            s.dtype,
            f"{s.num_layers} x {s.num_kv_heads} x {s.head_dim}",
            s.bytes_per_token,
            format_bytes(s.bytes_per_token),
            s.tokens_per_gib,
            format_bytes(s.bytes_per_block),
            f"{format_bytes(s.bytes_per_max_len_sequence)} ({s.max_position_embeddings})",
        ]
        for s in sizes
    ]
    header = [
        "model",
        "dtype",
        "layers x kv heads x head dim",
        "bytes / token",
        "per token",
        "tokens / GiB",
        f"per block of {args.block_size}",
        "one max-length sequence",
    ]
    print(table(header, rows))
    return 0


def write_kv_report(llm: Any, path: Path, command: str) -> str:
    """``pagedllm generate --kv-report``: the engine's per-step KV samples as a report; its markdown."""
    from pagedllm.report.markdown import runs_table

    report = {"tool": "pagedllm generate", "command": command, "runs": [llm.kv_stats_report()]}
    _write(path, json.dumps(report) + "\n")
    return runs_table(report["runs"])


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
