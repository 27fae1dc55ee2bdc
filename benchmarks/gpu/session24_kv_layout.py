"""Session 24: decode attention over a head-major KV cache at the decode steps' shapes.

The engine's cache is ``[2, blocks, block_size, kv_heads, dim]``: a token's K row holds every KV head,
so a program of one KV head reads ``block_size`` pieces of ``dim * 2`` bytes a row apart (the 1B: 128
bytes every 1 KB; Qwen3-0.6B: 256 bytes every 2 KB). Head-major, ``[2, blocks, kv_heads, block_size,
dim]``, makes each block's share of a KV head one contiguous piece (2 KB, 4 KB). The first session's
sweep measured it only at long contexts (Qwen2.5 256 x 16k 4% faster, before both of its KV heads
went into one program; Llama-8B equal). This times the engine's plan over both layouts (the kernel
reads the cache through strides: no code changes) at 528 tokens, as in ``bench decode --context 512``,
and at 4k, CUDA-graph replays over rotating caches, and checks that both layouts give the same output.

    python3 benchmarks/gpu/session24_kv_layout.py OUT.json   # on an H100

Call 2 ran it on 39747d0, before the engine's cache became head-major, through that tree's
``bench_decode(head_major=...)`` and ``make_set``'s token-major default; this is the same script on
today's names (``token_major``).
"""

from __future__ import annotations

import json
import sys

import torch

from pagedllm.attention.triton.decode import choose_decode_plan, paged_decode_attention
from pagedllm.bench.kernels import HEAD_LAYOUTS, bench_decode, copy_bandwidth, make_set

SHAPES = [(64, 528), (256, 528), (64, 4096), (256, 4096)]


def same_output_both_layouts(heads: str, batch: int, context: int, device: torch.device) -> float:
    """Max |difference| between the kernel's outputs over one cache stored both ways."""
    layout = HEAD_LAYOUTS[heads]
    s = make_set(batch, context, 1, 16, layout, torch.bfloat16, device, token_major=True)
    head_major = s.cache.transpose(2, 3).contiguous().transpose(2, 3)  # same values, head-major storage
    assert s.cache.is_contiguous() and head_major.stride(3) == 16 * layout[2]
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    _, splits = choose_decode_plan(batch, layout[1], layout[2], context, sms)
    outs = []
    for cache in (s.cache, head_major):
        out = torch.full_like(s.query, float("nan"))
        md = s.metadata
        paged_decode_attention(out, s.query, cache, md.block_tables, md.seq_lens, md.query_start_loc, context,
                               layout[2] ** -0.5, num_splits=splits)  # fmt: skip
        outs.append(out)
    assert not outs[0].isnan().any()
    return (outs[0].float() - outs[1].float()).abs().max().item()


def main() -> None:
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows = []
    for heads in ("llama-3.2-1b", "qwen3-0.6b", "qwen", "llama"):
        for batch, context in SHAPES:
            row = {"heads": heads, "batch": batch, "context": context,
                   "max_abs_diff": same_output_both_layouts(heads, batch, context, device)}  # fmt: skip
            for rnd in (1, 2):
                for head_major in (False, True):
                    r = bench_decode(heads, batch, context, 16, "bf16", device, copy_bw,
                                     token_major=not head_major, with_sdpa=False)  # fmt: skip
                    key = "head_major" if head_major else "standard"
                    row[f"{key}_us_{rnd}"] = r["ms_graph"] * 1e3
                    row[f"{key}_fraction_{rnd}"] = r["bandwidth_fraction_graph"]
                    row["plan"] = {"splits": r["num_splits"], "kv_per_prog": r["kv_heads_per_program"],
                                   **r["launch"]}  # fmt: skip
            rows.append(row)
            print(row, flush=True)
            torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump(
            {"device": torch.cuda.get_device_name(), "copy_bandwidth": copy_bw, "rows": rows}, f, indent=1
        )


if __name__ == "__main__":
    main()
