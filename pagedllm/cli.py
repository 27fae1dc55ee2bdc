"""Command line: ``pagedllm generate``, ``chat``, ``serve``, ``bench`` (``throughput``, ``decode``,
``kernels``, ``serve``), ``simulate`` (KV memory, no model) and ``kv-size``."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pagedllm.bench.cli import add_serve_bench_parser
from pagedllm.config import ATTENTION_BACKENDS, LOAD_FORMATS
from pagedllm.core.kv_policy import KV_POLICIES
from pagedllm.core.scheduler import DEFAULT_SWAP_THRESHOLD_TOKENS, PREEMPTION_MODES
from pagedllm.server.cli import add_serve_args
from pagedllm.sim.cli import add_kv_size_parser, add_simulate_parser, write_kv_report


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--model",
        default=None,
        help="HF model dir, .gguf file, or config.json with --load-format dummy "
        "(default: the built-in SmolLM2-135M-Instruct)",
    )
    group.add_argument(
        "--dtype", default="auto", help="auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, float16"
    )
    group.add_argument("--device", default="auto")
    group.add_argument("--block-size", type=int, default=16)
    group.add_argument("--max-model-len", type=int, default=None)
    group.add_argument("--max-num-seqs", type=int, default=256)
    group.add_argument(
        "--max-num-batched-tokens",
        type=int,
        default=None,
        help="tokens a step may compute (default: 16384 for offline runs on a Hopper GPU of >= 70 GiB, "
        "8192 elsewhere and for the server; never below max_model_len)",
    )
    group.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.9,
        help="CUDA: the share of the card the weights, activations and KV cache may take (the cache gets "
        "what is left; --kv-cache-memory-bytes sets it exactly)",
    )
    group.add_argument("--kv-cache-memory-bytes", type=int, default=None)
    group.add_argument("--enforce-eager", action="store_true", help="CUDA: no graphs (every step eager)")
    group.add_argument(
        "--no-prefix-caching", action="store_true", help="never reuse another request's KV blocks"
    )
    group.add_argument("--no-chunked-prefill", action="store_true", help="schedule every prompt whole")
    group.add_argument(
        "--kv-policy",
        default="paged",
        choices=KV_POLICIES,
        help="paged (blocks on demand) or contiguous (max_model_len reserved per request: the baseline)",
    )
    group.add_argument("--attention-backend", default="auto", choices=ATTENTION_BACKENDS)
    group.add_argument("--load-format", default="auto", choices=LOAD_FORMATS)
    group.add_argument("--seed", type=int, default=0, help="engine seed for requests without their own")
    group.add_argument(
        "--swap-space",
        type=float,
        default=None,
        help="GiB of CPU memory preempted requests swap their KV blocks to (default: 4 on CUDA, 0 on CPU)",
    )
    group.add_argument(
        "--preemption-mode",
        default="auto",
        choices=PREEMPTION_MODES,
        help="auto: swap sequences of at least --swap-threshold-tokens computed tokens, recompute shorter",
    )
    group.add_argument("--swap-threshold-tokens", type=int, default=DEFAULT_SWAP_THRESHOLD_TOKENS)
    group.add_argument(
        "--piecewise-graph-max-tokens",
        type=int,
        default=None,
        help="CUDA: steps that are not pure decodes, up to this many tokens, replay graphs captured "
        "between attentions (default 2048; 0: eager)",
    )
    group.add_argument(
        "--async-scheduling",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="schedule the next decode step while the GPU runs this one (default: on with CUDA)",
    )


def _add_sampling_args(parser: argparse.ArgumentParser, max_tokens: int) -> None:
    group = parser.add_argument_group("sampling (vLLM's meanings)")
    group.add_argument("--max-tokens", type=int, default=max_tokens)
    group.add_argument("--min-tokens", type=int, default=0)
    group.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (the CLI's default)")
    group.add_argument("--top-p", type=float, default=1.0)
    group.add_argument("--top-k", type=int, default=0)
    group.add_argument("--min-p", type=float, default=0.0)
    group.add_argument("--request-seed", type=int, default=None, help="per-request sampling seed")
    group.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    group.add_argument("--ignore-eos", action="store_true")
    group.add_argument("--repetition-penalty", type=float, default=1.0)
    group.add_argument("--presence-penalty", type=float, default=0.0)
    group.add_argument("--frequency-penalty", type=float, default=0.0)
    group.add_argument("--logprobs", type=int, default=None)


def _engine_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "dtype": args.dtype,
        "device": args.device,
        "block_size": args.block_size,
        "max_model_len": args.max_model_len,
        "max_num_seqs": args.max_num_seqs,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "kv_cache_memory_bytes": args.kv_cache_memory_bytes,
        "enforce_eager": args.enforce_eager,
        "enable_prefix_caching": not args.no_prefix_caching,
        "enable_chunked_prefill": not args.no_chunked_prefill,
        "kv_policy": args.kv_policy,
        "attention_backend": args.attention_backend,
        "load_format": args.load_format,
        "seed": args.seed,
        "swap_space": args.swap_space,
        "preemption_mode": args.preemption_mode,
        "swap_threshold_tokens": args.swap_threshold_tokens,
        "async_scheduling": args.async_scheduling,
        "piecewise_graph_max_tokens": args.piecewise_graph_max_tokens,
    }


def _sampling_params(args: argparse.Namespace) -> Any:
    from pagedllm.sampling_params import SamplingParams

    return SamplingParams(
        max_tokens=args.max_tokens,
        min_tokens=args.min_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        min_p=args.min_p,
        seed=args.request_seed,
        stop=args.stop,
        ignore_eos=args.ignore_eos,
        repetition_penalty=args.repetition_penalty,
        presence_penalty=args.presence_penalty,
        frequency_penalty=args.frequency_penalty,
        logprobs=args.logprobs,
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from pagedllm.llm import LLM

    prompts = list(args.prompts)
    if args.prompts_file:
        with open(args.prompts_file, encoding="utf-8") as f:
            prompts += [line.rstrip("\n") for line in f if line.strip()]
    if not prompts:
        print("error: give a PROMPT or --prompts-file", file=sys.stderr)
        return 2
    params = _sampling_params(args)
    llm = LLM(**_engine_kwargs(args), record_kv_stats=args.kv_report is not None)
    if args.chat:
        outputs = llm.chat(
            [[{"role": "user", "content": p}] for p in prompts], params, use_tqdm=len(prompts) > 1
        )
    else:
        outputs = llm.generate(prompts, params, use_tqdm=len(prompts) > 1)
    for prompt, output in zip(prompts, outputs, strict=True):
        completion = output.outputs[0]
        if args.json:
            record = {
                "prompt": prompt,
                "text": completion.text,
                "token_ids": completion.token_ids,
                "finish_reason": completion.finish_reason,
            }
            if completion.logprobs is not None:  # per token: {token id: logprob}, the sampled one first
                record["logprobs"] = [
                    {str(token_id): lp.logprob for token_id, lp in entry.items()}
                    for entry in completion.logprobs
                ]
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(f"Prompt: {prompt!r}\nOutput: {completion.text!r} ({completion.finish_reason})")
            for entry in completion.logprobs or ():
                top = ", ".join(f"{lp.decoded_token!r} {lp.logprob:.3f}" for lp in entry.values())
                print(f"  {top}")
    if args.kv_report is not None:
        command = shlex.join(["pagedllm", *args.argv])
        print(write_kv_report(llm, Path(args.kv_report), command), file=sys.stderr)
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from pagedllm.llm import LLM

    llm = LLM(**_engine_kwargs(args))
    params = _sampling_params(args)
    conversation: list[dict[str, str]] = []
    if args.system:
        conversation.append({"role": "system", "content": args.system})
    interactive = sys.stdin.isatty()
    if interactive:
        print("pagedllm chat: type a message, /reset to start over, /exit or Ctrl-D to quit.")
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            return 0
        line = line.strip()
        if not line:
            continue
        if line == "/exit":
            return 0
        if line == "/reset":
            del conversation[1 if args.system else 0 :]
            continue
        conversation.append({"role": "user", "content": line})
        reply = llm.chat(conversation, params, use_tqdm=False)[0].outputs[0].text
        conversation.append({"role": "assistant", "content": reply})
        print(reply, flush=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    from pagedllm.server.cli import run_server

    return run_server(args, _engine_kwargs(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagedllm", description="LLM inference on a paged KV cache")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="complete one or more prompts")
    gen.add_argument("prompts", nargs="*", metavar="PROMPT")
    gen.add_argument("--prompts-file", help="a text file with one prompt per line")
    gen.add_argument("--chat", action="store_true", help="wrap each prompt in the chat template")
    gen.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    gen.add_argument(
        "--kv-report",
        metavar="PATH",
        default=None,
        help="sample the KV pool every step; write the report (JSON) here and print its table on stderr",
    )
    _add_engine_args(gen)
    _add_sampling_args(gen, max_tokens=64)
    gen.set_defaults(func=_cmd_generate)

    chat = sub.add_parser("chat", help="interactive chat with the model's chat template")
    chat.add_argument("--system", default=None, help="system message")
    _add_engine_args(chat)
    _add_sampling_args(chat, max_tokens=256)
    chat.set_defaults(func=_cmd_chat)

    serve = sub.add_parser("serve", help="OpenAI-compatible HTTP server (completions, chat, metrics)")
    add_serve_args(serve)
    _add_engine_args(serve)
    serve.set_defaults(func=_cmd_serve)

    add_simulate_parser(sub)
    add_kv_size_parser(sub)
    _add_bench_parser(sub)
    return parser


def _add_bench_parser(sub: Any) -> None:
    from pagedllm.bench.decode_step import add_decode_parser
    from pagedllm.bench.throughput import add_throughput_parser

    bench = sub.add_parser("bench", help="benchmarks: offline throughput, decode steps, kernels, serving")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    add_throughput_parser(bench_sub, _add_engine_args)
    bench_sub.choices["throughput"].set_defaults(func=_cmd_bench_throughput)
    add_decode_parser(bench_sub, _add_engine_args)
    bench_sub.choices["decode"].set_defaults(func=_cmd_bench_decode)
    add_serve_bench_parser(bench_sub)
    # NOTE: main() hands `bench kernels ...` to the kernel benchmark's own parser before this one runs
    # (it imports triton); this entry only lists the command.
    bench_sub.add_parser("kernels", help="Triton paged attention vs the copy floor and SDPA (GPU)")


def _cmd_bench_throughput(args: argparse.Namespace) -> int:
    from pagedllm.bench.throughput import cmd_throughput

    return cmd_throughput(args, _engine_kwargs(args))


def _cmd_bench_decode(args: argparse.Namespace) -> int:
    from pagedllm.bench.decode_step import cmd_decode

    return cmd_decode(args, _engine_kwargs(args))


def _cmd_bench_kernels(argv: list[str]) -> int:
    import os

    if "--smoke" in argv:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # NOTE: before triton is first imported
    from pagedllm.bench.kernels import main as kernels_main

    return kernels_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:2] == ["bench", "kernels"]:
            return _cmd_bench_kernels(argv[2:])
        args = build_parser().parse_args(argv)
        args.argv = argv  # the command line, for reports that record how they were made
        return int(args.func(args))
    except (ValueError, OSError) as e:  # bad input, or a file that cannot be read or written
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
