"""Does a float32 prefill through TMA descriptors finish on this GPU? (Session 6: the GPU tests hung
once float32 steps took the TMA path.) Run under `timeout`; prints one line per case as it finishes."""

import sys

import torch

from pagedllm.attention.triton.prefill import PrefillLaunch, paged_prefill_attention

dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[1]]
num_heads, num_kv_heads, head_dim, block_size, n = 8, 2, int(sys.argv[2]), 16, 64
cache = torch.randn(2, n // block_size, block_size, num_kv_heads, head_dim, dtype=dtype, device="cuda")
qkv = torch.randn(n, num_heads + 2 * num_kv_heads, head_dim, dtype=dtype, device="cuda")
query, key, value = qkv.split([num_heads, num_kv_heads, num_kv_heads], dim=1)
tables = torch.arange(n // block_size, dtype=torch.int32, device="cuda")[None]
lens = torch.tensor([n], dtype=torch.int32, device="cuda")
starts = torch.tensor([0, n], dtype=torch.int32, device="cuda")
out = torch.empty_like(query)
paged_prefill_attention(
    out, query, cache, tables, lens, starts, 0.1, key=key, value=value, launch=PrefillLaunch(tma=True)
)
torch.cuda.synchronize()
print(f"{sys.argv[1]} head_dim {head_dim} through TMA: finished", flush=True)
