"""Session 21: one launch each of our decode attention (the engine's plan) and SDPA's, Qwen2.5-0.5B
layout (14 query / 2 KV heads of 64), 64 x 4k and 256 x 4k, bf16, block size 16, for Nsight Compute:
what SDPA's kernel does (grid, registers, shared memory, DRAM throughput) where it still beats ours.

``ncu --profile-from-start off --section ... python3 session21_ncu_qwen_decode.py``
"""

import torch

from pagedllm.attention.triton import paged_decode_attention
from pagedllm.bench.kernels import HEAD_LAYOUTS, launch_under_profiler, make_set, sdpa_decode

device = torch.device("cuda")
cases = []
for batch in (64, 256):
    s = make_set(batch, 4096, 1, 16, HEAD_LAYOUTS["qwen"], torch.bfloat16, device)
    md, out = s.metadata, torch.empty_like(s.query)
    cases.append(lambda s=s, md=md, out=out: paged_decode_attention(
        out, s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, 4096, 0.125))  # fmt: skip
    cases.append(lambda s=s: sdpa_decode(s))
launch_under_profiler(cases, warmups=2)
