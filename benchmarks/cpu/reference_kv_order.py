"""The CPU reference backend's ``attend`` on the two KV storage orders ``new_kv_cache`` can give.

Session 25: head-major storage made the reference gather transpose while it gathers; this times one
``attend`` call per order on the same values (SmolLM2's 9 query / 3 KV heads of dim 64, 32 sequences
of 512 tokens, block size 16, float32), alternating orders so drift hits both, and checks the outputs
are bit-identical. Run: ``.venv/bin/python benchmarks/cpu/reference_kv_order.py [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.attention.reference import ReferenceAttentionBackend
from pagedllm.worker.kv_cache import new_kv_cache


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seqs", type=int, default=32)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    heads, kv_heads, dim, block_size = 9, 3, 64, 16
    blocks_per_seq = -(-args.context // block_size)
    num_blocks = args.seqs * blocks_per_seq
    caches = {
        order: new_kv_cache(
            num_blocks, block_size, kv_heads, dim, torch.float32, "cpu", head_major=order == "head"
        )
        for order in ("token", "head")
    }
    values = torch.randn(caches["token"].shape)
    for cache in caches.values():
        cache.copy_(values)
    block_tables = torch.randperm(num_blocks, dtype=torch.int32).view(args.seqs, blocks_per_seq)
    metadata = AttentionMetadata(
        slot_mapping=torch.zeros(args.seqs, dtype=torch.long),
        block_tables=block_tables,
        query_start_loc=torch.arange(args.seqs + 1, dtype=torch.int32),
        seq_lens=torch.full((args.seqs,), args.context, dtype=torch.int32),
        max_query_len=1,
        max_seq_len=args.context,
        query_start_loc_host=list(range(args.seqs + 1)),
        seq_lens_host=[args.context] * args.seqs,
    )
    query = torch.randn(args.seqs, heads, dim)
    backend = ReferenceAttentionBackend()
    outputs = {order: backend.attend(query, cache, metadata, dim**-0.5) for order, cache in caches.items()}
    assert torch.equal(outputs["token"], outputs["head"]), "the two storage orders disagree"
    times: dict[str, list[float]] = {"token": [], "head": []}
    for _ in range(args.repeats):
        for order, cache in caches.items():
            start = time.perf_counter()
            backend.attend(query, cache, metadata, dim**-0.5)
            times[order].append((time.perf_counter() - start) * 1e3)
    result = {
        "seqs": args.seqs,
        "context": args.context,
        "threads": torch.get_num_threads(),
        **{f"{order}_major_ms_median": statistics.median(ms) for order, ms in times.items()},
        **{f"{order}_major_ms_min": min(ms) for order, ms in times.items()},
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
