"""Session 22: one launch each of the Gluon probes and SDPA at 16 x 32 heads x 1k (dense causal MHA,
head dim 128) between cudaProfilerStart/Stop, for Nsight Compute (session22_call4.sh)."""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from session21_gluon_probe import attend
from session22_gluon_pingpong import attend_pp

batch, heads, seq_len = 16, 32, 1024
q, k, v = (torch.randn(batch * heads * seq_len, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
out = torch.empty_like(q)
q4, k4, v4 = (t.view(batch, heads, seq_len, 128) for t in (q, k, v))
cases = [
    lambda: attend(q, k, v, out, seq_len, 64, 64, 3, False),  # one warpgroup, sequential
    lambda: attend_pp(q, k, v, out, seq_len, 64, 3, False, 168),  # producer + 2 consumers
    lambda: attend_pp(q, k, v, out, seq_len, 64, 3, True, 240),  # the same, taking turns
    lambda: torch.nn.functional.scaled_dot_product_attention(q4, k4, v4, is_causal=True),
]
for case in cases:  # compile and warm outside the profiled range
    case()
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStart()
for case in cases:
    case()
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStop()
