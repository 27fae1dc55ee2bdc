"""Offline throughput on the CPU with SmolLM2-135M: pagedllm against transformers `generate` on a
padded batch of the same prompts, in one run (issue 2's measurement).

Workload: 64 prompts of random token ids, lengths uniform in [16, 512]; each with its own output
length uniform in [16, 256], EOS ignored so both systems produce exactly those tokens. A padded static
batch cannot stop sequences individually, so transformers generates max(output lengths) for every row;
both systems are credited only with the requested output tokens.

    python benchmarks/cpu_throughput.py [--num-prompts 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from common import environment, measure_cpu_roofline, write_result


def make_workload(num_prompts: int, seed: int, vocab_size: int) -> tuple[list[list[int]], list[int]]:
    rng = random.Random(seed)
    # Skip the first ids: they hold the special tokens.
    prompts = [
        [rng.randrange(100, vocab_size) for _ in range(rng.randint(16, 512))] for _ in range(num_prompts)
    ]
    output_lens = [rng.randint(16, 256) for _ in range(num_prompts)]
    return prompts, output_lens


def run_pagedllm(prompts: list[list[int]], output_lens: list[int]) -> dict[str, float]:
    from pagedllm import LLM, SamplingParams

    llm = LLM(dtype="float32")
    params = [SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True) for n in output_lens]
    llm.generate(prompts[:2], params[:2], use_tqdm=False)  # warm-up
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - start
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    assert generated == sum(output_lens), "pagedllm produced a different number of tokens"
    return {"seconds": elapsed, "output_tokens": generated, "output_tokens_per_s": generated / elapsed}


def run_hf_padded(prompts: list[list[int]], output_lens: list[int]) -> dict[str, float]:
    from transformers import AutoModelForCausalLM

    from pagedllm.model.default_model import default_model_path

    gguf = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    pad_id = 2
    max_len = max(len(p) for p in prompts)
    # Left padding, as decoder-only batched generation requires.
    input_ids = torch.tensor([[pad_id] * (max_len - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (max_len - len(p)) + [1] * len(p) for p in prompts])
    max_new = max(output_lens)
    with torch.no_grad():
        model.generate(
            input_ids[:2, -16:], attention_mask=attention_mask[:2, -16:], max_new_tokens=2
        )  # warm-up
        start = time.perf_counter()
        out = model.generate(
            input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new,
            min_new_tokens=max_new,
            do_sample=False,
            pad_token_id=pad_id,
        )
        elapsed = time.perf_counter() - start
    assert out.shape[1] - max_len == max_new
    useful = sum(output_lens)
    return {
        "seconds": elapsed,
        "output_tokens": useful,
        "output_tokens_per_s": useful / elapsed,
        "generated_tokens_incl_padding": len(prompts) * max_new,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-prompts", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    prompts, output_lens = make_workload(args.num_prompts, args.seed, vocab_size=49152)
    roofline = measure_cpu_roofline()
    ours = run_pagedllm(prompts, output_lens)
    peer = None if args.skip_peer else run_hf_padded(prompts, output_lens)

    # Floor: prefill FLOPs at the measured matmul rate; each decode step reads every weight once.
    num_params = 134_515_008  # SmolLM2-135M incl. tied embeddings
    prompt_tokens = sum(len(p) for p in prompts)
    prefill_floor_s = 2 * num_params * prompt_tokens / roofline["matmul_flops_per_s"]
    decode_floor_s = max(output_lens) * num_params * 4 / roofline["copy_bytes_per_s"]
    decode_flops_floor_s = 2 * num_params * sum(output_lens) / roofline["matmul_flops_per_s"]
    floor_s = prefill_floor_s + max(decode_floor_s, decode_flops_floor_s)

    result = {
        **environment(),
        "benchmark": "cpu-throughput",
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1 dequantized to float32)",
        "workload": {
            "num_prompts": len(prompts),
            "prompt_len": "uniform 16-512",
            "output_len": "uniform 16-256",
            "prompt_tokens": prompt_tokens,
            "output_tokens": sum(output_lens),
            "seed": args.seed,
        },
        "roofline": {**roofline, "floor_seconds": floor_s},
        "pagedllm": ours,
        "peers": {"hf_generate_padded": peer},
    }
    if peer is not None:
        result["speedup_vs_hf_padded"] = ours["output_tokens_per_s"] / peer["output_tokens_per_s"]
    path = write_result("cpu-throughput-smollm2", result)

    print(f"{'system':<28}{'seconds':>10}{'output tok/s':>14}")
    print(f"{'pagedllm':<28}{ours['seconds']:>10.1f}{ours['output_tokens_per_s']:>14.1f}")
    if peer is not None:
        print(
            f"{'transformers padded batch':<28}{peer['seconds']:>10.1f}{peer['output_tokens_per_s']:>14.1f}"
        )
        print(f"speedup: {result['speedup_vs_hf_padded']:.2f}x")
    print(f"floor (measured roofline): {floor_s:.1f} s -> pagedllm at {floor_s / ours['seconds']:.0%} of it")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
