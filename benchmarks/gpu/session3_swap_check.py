"""GPU check of preemption by swapping (issue 8): greedy tokens of a Llama-3.2-1B-shape dummy model on a
KV pool small enough to force preemption, in each mode, against an unpressured run."""

from __future__ import annotations

import sys
import time

import torch

from pagedllm import LLM, SamplingParams

model = sys.argv[1]
gen = torch.Generator().manual_seed(0)
prompts = [
    torch.randint(100, 128000, (int(n),), generator=gen).tolist() for n in torch.randint(200, 600, (48,))
]
params = SamplingParams(temperature=0.0, max_tokens=160, ignore_eos=True)
# float32: a preempted request is recomputed in other batches, and bf16 GEMMs are not batch-invariant.
common = dict(load_format="dummy", dtype="float32", max_model_len=1024, seed=0)


def run(**kwargs: object) -> tuple[list[list[int]], dict]:
    llm = LLM(model, **common, **kwargs)  # type: ignore[arg-type]
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    stats = llm.kv_cache_stats()
    stats["seconds"] = round(time.perf_counter() - start, 2)
    tokens = [o.outputs[0].token_ids for o in outs]
    del llm
    torch.cuda.empty_cache()
    return tokens, stats


block_bytes = 16 * 16 * 2 * 8 * 64 * 4  # tokens x layers x (K, V) x kv heads x head dim x fp32
small = 400 * block_bytes  # 400 blocks: far less than 48 x ~40 blocks
reference, _ = run()
for mode in ("recompute", "swap", "auto"):
    tokens, stats = run(kv_cache_memory_bytes=small, swap_space=2, preemption_mode=mode)
    same = sum(t == r for t, r in zip(tokens, reference, strict=True))
    keys = ("num_preemptions", "num_swap_preemptions", "num_free_blocks", "num_blocks", "seconds")
    print(mode, f"{same}/{len(prompts)} identical", {k: stats.get(k) for k in keys}, flush=True)
