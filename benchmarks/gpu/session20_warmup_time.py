"""Session 20: how long start-up's attention warm-up takes from a cold Triton cache, now that the prefill
kernel has a variant per fact of its sequences (eight through TMA, where it had two).

    TRITON_CACHE_DIR=$(mktemp -d) python3 benchmarks/gpu/session20_warmup_time.py MODEL.json
"""

from __future__ import annotations

import sys
import time

import torch

from pagedllm.attention.triton import TritonAttentionBackend
from pagedllm.model.loader.model_loader import load_model
from pagedllm.worker.kernel_warmup import warm_up_attention_variants
from pagedllm.worker.kv_cache import allocate_kv_caches


def main() -> None:
    device = torch.device("cuda")
    model, arch = load_model(sys.argv[1], dtype=torch.bfloat16, device=device, load_format="dummy")
    kv_caches = allocate_kv_caches(arch, 64, 16, torch.bfloat16, device)
    start = time.perf_counter()
    steps = warm_up_attention_variants(model, kv_caches, TritonAttentionBackend(), device, 16, 256, 2048)
    print(f"{sys.argv[1]}: {steps} warm-up steps in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
