"""Session 17: one decode-attention launch per layout at a decode step's shape, for Nsight Compute.

The 1B (32 query / 8 KV heads of 64) and Qwen3-0.6B (16 / 8 of 128) layouts, 64 sequences of 528 tokens
(a decode step of ``bench decode --context 512`` a few steps in), bf16, block size 16, shuffled block
tables; the engine's own plan. Warm-up launches run before ``cudaProfilerStart``, so
``ncu --profile-from-start off`` sees one launch of each.

``ncu --profile-from-start off --section ... python3 session17_ncu_decode.py``
"""

import torch

from pagedllm.attention.triton import paged_decode_attention
from pagedllm.bench.kernels import launch_under_profiler, make_set

LAYOUTS = {"1b": (32, 8, 64), "qwen3": (16, 8, 128)}
device = torch.device("cuda")
cases = []
for layout in LAYOUTS.values():
    s = make_set(64, 528, 1, 16, layout, torch.bfloat16, device)
    md, out = s.metadata, torch.empty_like(s.query)
    cases.append(lambda s=s, md=md, out=out, d=layout[2]: paged_decode_attention(
        out, s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, 528, d ** -0.5))  # fmt: skip
launch_under_profiler(cases, warmups=2)
