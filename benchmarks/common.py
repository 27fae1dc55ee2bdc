"""What every benchmark records beside its numbers: command, commit, machine, versions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from pagedllm.bench.environment import environment

__all__ = ["RESULTS_DIR", "environment", "measure_cpu_roofline", "write_result"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def measure_cpu_roofline(dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Measured matmul rate and memory copy bandwidth of this machine (the two ceilings)."""
    n = 2048
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    reps = 5
    for _ in range(reps):
        a @ b
    flops = 2 * n**3 * reps / (time.perf_counter() - start)
    src = torch.randn(64 * 2**20 // 4)  # 64 MiB, well past the caches
    dst = torch.empty_like(src)
    dst.copy_(src)
    start = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    # Bytes read plus bytes written.
    bandwidth = 2 * src.numel() * src.element_size() * reps / (time.perf_counter() - start)
    return {"matmul_flops_per_s": flops, "copy_bytes_per_s": bandwidth}
