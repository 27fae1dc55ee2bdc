"""KV blocks saved by sharing among a request's branches: the `parallel-beam` workload of
../shared/BENCHMARKS.md (n = 2, 4, 6 parallel samples and beam widths 2, 4, 6; prompts 512 tokens,
outputs 256).

Every step the engine's KV recorder counts the blocks the running sequences hold (a shared block once)
and the table entries they would hold if nothing were shared; the saving is
``sum(entries - held) / sum(entries)`` over the steps, the time-averaged share of KV memory that
sharing saves. Prefix caching is off, so only branch sharing counts (shared-prefix is measured in
docs/MEMORY.md).

    python benchmarks/sharing_memory.py                      # SmolLM2 on the CPU (real weights)
    python benchmarks/sharing_memory.py --model ../shared/models/llama-2-7b.json --load-format dummy \
        --dtype bfloat16 --num-requests 16 --name sharing-llama-2-7b-h100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from common import environment, write_result

from pagedllm import LLM, BeamSearchParams, SamplingParams
from pagedllm.worker.kv_cache import kv_cache_bytes_per_block

DOCS = Path(__file__).resolve().parents[1] / "docs"


def make_prompts(llm: LLM, num_requests: int, prompt_len: int) -> list[list[int]]:
    """Windows of real English (this project's docs) for a model with a tokenizer, so beams see natural
    text; seeded random token ids for a dummy model. No two prompts share a block."""
    tokenizer = llm.get_tokenizer()
    if tokenizer is None:
        import random

        rng = random.Random(0)
        vocab = llm.engine.arch.vocab_size
        return [[rng.randrange(10, vocab) for _ in range(prompt_len)] for _ in range(num_requests)]
    text = "\n\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    ids = tokenizer.encode(text)
    stride = (len(ids) - prompt_len) // max(1, num_requests - 1)
    assert stride >= 16, "not enough text for distinct prompts"
    return [ids[i * stride : i * stride + prompt_len] for i in range(num_requests)]


def measure(llm: LLM, run: Any) -> dict[str, Any]:
    recorder = llm.engine.start_kv_stats()
    start = time.perf_counter()
    outputs = run()
    elapsed = time.perf_counter() - start
    held = sum(s.num_used_blocks for s in recorder.samples)
    saved = sum(s.num_blocks_saved_by_sharing for s in recorder.samples)
    peak_unshared = max(s.num_used_blocks + s.num_blocks_saved_by_sharing for s in recorder.samples)
    return {
        "steps": len(recorder.samples),
        "seconds": round(elapsed, 2),
        "block_steps_held": held,
        "block_steps_unshared": held + saved,
        "saved_fraction": saved / (held + saved) if held + saved else 0.0,
        "peak_blocks_held": max(s.num_used_blocks for s in recorder.samples),
        "peak_blocks_unshared": peak_unshared,
        "num_preemptions": recorder.summary().num_preemptions,
        "output_tokens": sum(len(c.token_ids) for o in outputs for c in getattr(o, "outputs", []))
        + sum(len(s.token_ids) for o in outputs for s in getattr(o, "sequences", [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="default: SmolLM2-135M-Instruct")
    parser.add_argument("--load-format", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--num-requests", type=int, default=4)
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--widths", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--kv-cache-memory-bytes", type=int, default=None)
    parser.add_argument("--name", default="sharing-smollm2-cpu")
    args = parser.parse_args()

    llm = LLM(
        args.model,
        load_format=args.load_format,
        dtype=args.dtype,
        enable_prefix_caching=False,
        max_model_len=args.prompt_len + args.output_len,
        kv_cache_memory_bytes=args.kv_cache_memory_bytes,
        record_kv_stats=True,
    )
    prompts = make_prompts(llm, args.num_requests, args.prompt_len)
    block_bytes = kv_cache_bytes_per_block(llm.engine.arch, llm.config.block_size, llm.engine.dtype)
    rows = []
    for width in args.widths:
        sampling = SamplingParams(
            n=width, temperature=1.0, seed=0, max_tokens=args.output_len, ignore_eos=True
        )
        beams = BeamSearchParams(beam_width=width, max_tokens=args.output_len)
        for mode, run in (
            (f"parallel n={width}", lambda s=sampling: llm.generate(prompts, s, use_tqdm=False)),
            (f"beam width={width}", lambda b=beams: llm.beam_search(prompts, b)),
        ):
            row = {"mode": mode, **measure(llm, run)}
            row["peak_gib_held"] = row["peak_blocks_held"] * block_bytes / 2**30
            row["peak_gib_unshared"] = row["peak_blocks_unshared"] * block_bytes / 2**30
            rows.append(row)
            print(
                f"{mode:16s} saved {100 * row['saved_fraction']:5.1f}% of KV block-steps; peak "
                f"{row['peak_blocks_held']} blocks held vs {row['peak_blocks_unshared']} unshared "
                f"({row['peak_gib_held']:.2f} vs {row['peak_gib_unshared']:.2f} GiB); "
                f"{row['steps']} steps, {row['seconds']} s",
                flush=True,
            )
    result = {
        "benchmark": "parallel-beam",
        "model": args.model or "SmolLM2-135M-Instruct",
        "load_format": args.load_format,
        "dtype": args.dtype,
        "num_requests": args.num_requests,
        "prompt_len": args.prompt_len,
        "output_len": args.output_len,
        "block_size": llm.config.block_size,
        "kv_bytes_per_block": block_bytes,
        "rows": rows,
        "environment": environment(),
    }
    print("wrote", write_result(args.name, result))


if __name__ == "__main__":
    main()
