"""``pagedllm bench serve``: its options and its run (the ``bench`` group lives in ``pagedllm/cli.py``)."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from pathlib import Path
from typing import Any


def _rate(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"request rate must be > 0 or inf, got {text}")
    return value


def add_serve_bench_parser(kinds: Any) -> None:
    """``bench serve``, added to the ``bench`` group's sub-commands."""
    serve = kinds.add_parser("serve", help="load an OpenAI-compatible server, like `vllm bench serve`")
    serve.add_argument("--base-url", default=None, help="default: http://HOST:PORT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model", default=None, help="default: the first model the server lists")
    serve.add_argument("--api-key", default=None)
    serve.add_argument("--dataset-name", default="random", choices=["random"])
    serve.add_argument("--num-prompts", type=int, default=100)
    serve.add_argument("--input-len", type=int, default=128, help="prompt tokens (random token ids)")
    serve.add_argument("--output-len", type=int, default=32, help="output tokens (EOS ignored)")
    serve.add_argument("--range-ratio", type=float, default=0.0, help="lengths uniform in len*(1 -/+ ratio)")
    serve.add_argument(
        "--request-rate",
        type=_rate,
        nargs="+",
        default=[math.inf],
        help="requests per second, one run each (inf: all at once)",
    )
    serve.add_argument("--burstiness", type=float, default=1.0, help="gamma shape: 1 = Poisson, <1 burstier")
    serve.add_argument("--max-concurrency", type=int, default=None)
    serve.add_argument("--num-warmups", type=int, default=1)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--no-ignore-eos", action="store_true", help="let requests stop at EOS")
    serve.add_argument("--result-file", default=None, help="write the JSON report here")
    serve.set_defaults(func=_cmd_bench_serve)


def _cmd_bench_serve(args: argparse.Namespace) -> int:
    from pagedllm.bench.serve import BenchConfig, format_table, run_benchmark, write_report

    config = BenchConfig(
        base_url=args.base_url or f"http://{args.host}:{args.port}",
        model=args.model,
        num_prompts=args.num_prompts,
        input_len=args.input_len,
        output_len=args.output_len,
        range_ratio=args.range_ratio,
        request_rates=tuple(args.request_rate),
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
        seed=args.seed,
        api_key=args.api_key,
        ignore_eos=not args.no_ignore_eos,
        num_warmups=args.num_warmups,
    )
    report = asyncio.run(run_benchmark(config))
    print(format_table(report))
    if args.result_file:
        write_report(report, Path(args.result_file))
        print(f"wrote {args.result_file}", file=sys.stderr)
    failed = sum(run["failed"] for run in report["runs"])
    return 1 if failed else 0
