"""``pagedllm bench throughput``: offline throughput as ``vllm bench throughput`` reports it, beside
the workload's physical floor (``pagedllm/bench/roofline.py``) and, with ``--peers``, Hugging Face
transformers on the same prompts in the same run.

    pagedllm bench throughput --model ../shared/models/llama-3.2-1b.json --load-format dummy \\
        --dataset random --input-len 512 --output-len 128 --num-prompts 256 --peers \\
        --output-json benchmarks/results/throughput-llama-3.2-1b.json
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from pathlib import Path
from typing import Any

import torch

from pagedllm.bench.environment import environment, write_json
from pagedllm.bench.roofline import measure_ceilings, throughput_floor
from pagedllm.bench.workload import Workload, random_workload, workload_from_file

PEERS = ("generate", "generate_batch")
WARMUP_SEED = 1


def add_throughput_parser(sub: Any, add_engine_args: Any) -> None:
    p = sub.add_parser("throughput", help="offline throughput, its roofline, and optional HF peers")
    p.add_argument("--dataset", default="random", help="'random', or a JSON/CSV file of lengths")
    p.add_argument("--input-len", default="1024", help="prompt length N, or a uniform range LOW-HIGH")
    p.add_argument("--output-len", default="128", help="output length N, or a uniform range LOW-HIGH")
    p.add_argument("--num-prompts", type=int, default=1000)
    p.add_argument("--n", type=int, default=1, help="parallel samples per prompt")
    p.add_argument("--workload-seed", type=int, default=0)
    p.add_argument("--warmup-prompts", type=int, default=8)
    p.add_argument(
        "--peers",
        nargs="*",
        default=None,
        choices=PEERS,
        help="also run transformers on the same prompts (no names = both)",
    )
    p.add_argument("--peer-batch-size", type=int, default=None, help="padded batch (default max-num-seqs)")
    p.add_argument("--output-json", default=None)
    add_engine_args(p)


def make_workload(args: argparse.Namespace, vocab_size: int, max_model_len: int) -> Workload:
    if args.dataset == "random":
        return random_workload(
            args.num_prompts, args.input_len, args.output_len, vocab_size, args.workload_seed, max_model_len
        )
    return workload_from_file(args.dataset, vocab_size, args.workload_seed, max_model_len)


def check_args(args: argparse.Namespace) -> None:
    if args.warmup_prompts < 0:
        raise ValueError(f"--warmup-prompts must be >= 0, got {args.warmup_prompts}")
    if args.peer_batch_size is not None and args.peer_batch_size < 1:
        raise ValueError(f"--peer-batch-size must be >= 1, got {args.peer_batch_size}")


def run_pagedllm(llm: Any, workload: Workload, n: int, warmup_prompts: int) -> dict[str, Any]:
    from pagedllm.sampling_params import SamplingParams

    def params(length: int) -> SamplingParams:
        return SamplingParams(n=n, temperature=1.0 if n > 1 else 0.0, max_tokens=length, ignore_eos=True)

    if warmup_prompts:
        # Compiles the kernels for prefill, mixed and decode steps before the clock starts. The warm-up
        # prompts are the first ones shuffled: the same lengths, but no block of theirs is one of the
        # timed prompts' blocks, which the prefix cache would otherwise serve to the timed run.
        shuffle = random.Random(WARMUP_SEED).shuffle
        warm = [list(p) for p in workload.prompts[:warmup_prompts]]
        for prompt in warm:
            shuffle(prompt)
        llm.generate(warm, [params(8) for _ in warm], use_tqdm=False)
    device = llm.engine.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    outputs = llm.generate(workload.prompts, [params(m) for m in workload.output_lens], use_tqdm=False)
    elapsed = time.perf_counter() - start
    produced = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    expected = n * workload.num_output_tokens
    if produced != expected:
        raise RuntimeError(f"pagedllm produced {produced} output tokens, the workload asked for {expected}")
    total = workload.num_prompt_tokens + produced
    return {
        "system": "pagedllm",
        "kv_policy": llm.config.kv_policy,
        "seconds": elapsed,
        "output_tokens": produced,
        "requests_per_s": len(workload.prompts) / elapsed,
        "total_tokens_per_s": total / elapsed,
        "output_tokens_per_s": produced / elapsed,
        "num_preemptions": llm.engine.scheduler.num_preemptions,
        "num_kv_blocks": llm.engine.scheduler.kv.num_blocks,
        "cuda_graphs": llm.engine.runner.graph_batch_sizes(),
    }


def run_throughput(args: argparse.Namespace, engine_kwargs: dict[str, Any]) -> dict[str, Any]:
    from pagedllm.llm import LLM

    check_args(args)
    llm = LLM(**engine_kwargs)
    engine = llm.engine
    workload = make_workload(args, engine.arch.vocab_size, engine.max_model_len)
    dtype_bytes = torch.empty((), dtype=engine.dtype).element_size()
    ceilings = measure_ceilings(engine.device, engine.dtype)
    ours = run_pagedllm(llm, workload, args.n, args.warmup_prompts)
    floor = throughput_floor(
        engine.arch,
        workload.prompt_lens,
        workload.output_lens,
        engine.config.max_num_seqs,
        ceilings,
        dtype_bytes,
        n=args.n,
    )
    device, dtype, model_name = engine.device, engine.dtype, engine.model_name
    max_num_seqs = engine.config.max_num_seqs
    del llm, engine
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    peers: dict[str, Any] = {}
    if args.peers is not None:
        which = list(args.peers) or list(PEERS)
        from pagedllm.bench.peers import run_peers

        peers = run_peers(args.model, workload, dtype, device, args.peer_batch_size or max_num_seqs, which)

    result = {
        **environment(),
        "benchmark": "throughput",
        "model": model_name,
        "load_format": args.load_format,
        "dtype": str(dtype).removeprefix("torch."),
        "workload": {**workload.describe(), "n": args.n, "seed": args.workload_seed},
        "engine": {k: v for k, v in engine_kwargs.items() if k != "model"},
        **{k: ours[k] for k in ("requests_per_s", "total_tokens_per_s", "output_tokens_per_s")},
        "roofline_output_tokens_per_s": floor["roofline_output_tokens_per_s"],
        "fraction_of_roofline": ours["output_tokens_per_s"] / floor["roofline_output_tokens_per_s"],
        "pagedllm": ours,
        "roofline": floor,
        "peers": peers,
    }
    return result


def print_report(result: dict[str, Any]) -> None:
    print(
        f"Throughput: {result['requests_per_s']:.2f} requests/s, "
        f"{result['total_tokens_per_s']:.2f} total tokens/s, "
        f"{result['output_tokens_per_s']:.2f} output tokens/s"
    )
    floor = result["roofline"]
    print(
        f"Roofline: {floor['roofline_output_tokens_per_s']:.2f} output tokens/s "
        f"(floor {floor['floor_s']:.3f} s = prefill {floor['prefill_floor_s']:.3f} s at "
        f"{floor['matmul_flops_per_s'] / 1e12:.1f} TFLOP/s + {floor['decode_steps']} decode steps "
        f"{floor['decode_floor_s']:.3f} s at {floor['copy_bytes_per_s'] / 1e9:.0f} GB/s); "
        f"pagedllm at {result['fraction_of_roofline']:.1%} of it"
    )
    for name, peer in result["peers"].items():
        if "error" in peer:
            print(f"{name}: failed: {peer['error']}")
        else:
            print(
                f"{name}: {peer['requests_per_s']:.2f} requests/s, {peer['total_tokens_per_s']:.2f} total "
                f"tokens/s, {peer['output_tokens_per_s']:.2f} output tokens/s ({peer['seconds']:.1f} s)"
            )


def cmd_throughput(args: argparse.Namespace, engine_kwargs: dict[str, Any]) -> int:
    result = run_throughput(args, engine_kwargs)
    print_report(result)
    if args.output_json:
        path = write_json(args.output_json, result)
        print(f"written: {path}")
    else:
        print(json.dumps({k: result[k] for k in ("output_tokens_per_s", "fraction_of_roofline")}))
    return 0


def results_path(name: str) -> Path:
    return Path("benchmarks") / "results" / f"{name}.json"
