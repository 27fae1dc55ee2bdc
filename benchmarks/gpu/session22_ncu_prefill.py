"""Session 22: the engine's prefill kernel (a plain prefill of the Llama layout, as the engine launches
it) and SDPA on the same tokens, one launch each between cudaProfilerStart/Stop, for Nsight Compute's
instruction mix and per-instruction counters (session22_call6.sh). Writes the kernel's SASS and TTGIR
to the folder given."""

from __future__ import annotations

import os
import sys

import torch

from pagedllm.attention.triton import prefill
from pagedllm.bench.kernels import make_prefill_case

batch, context = int(sys.argv[2]), int(sys.argv[3])
case = make_prefill_case("llama", batch, context, 16, torch.bfloat16, torch.device("cuda"))
out = torch.empty_like(case.query)
cases = [lambda: case.attend(out), case.sdpa]
for fn in cases:
    fn()
torch.cuda.synchronize()
for cache in prefill._prefill_kernel.device_caches.values():
    kernels = cache[0] if isinstance(cache, tuple) else cache
    for i, kernel in enumerate(kernels.values()):
        for kind in ("sass", "ttgir", "ptx"):
            if kind in kernel.asm:
                with open(os.path.join(sys.argv[1], f"prefill-{i}.{kind}"), "w") as f:
                    f.write(kernel.asm[kind])
torch.cuda.cudart().cudaProfilerStart()
for fn in cases:
    fn()
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStop()
