"""Session 10: which BLAS path torch takes for the decode-step linears matters? The Llama-3.2-1B linears
(and its 128,256-row lm_head) at 64, 128 and 256 rows through ``torch.backends.cuda.preferred_blas_library``
"cublas" and "cublaslt", CUDA-graph replays over weight copies that are not in L2, then 16 layers' four
linears chained. GPU time only.

    python3 benchmarks/gpu/session10_blas.py  # writes $OUT/blas.json
"""

from __future__ import annotations

import json
import os

import torch
import torch.nn.functional as F

from pagedllm.bench.kernels import copy_bandwidth, graph_ms

DTYPE = torch.bfloat16
SHAPES = {"qkv": (3072, 2048), "o_proj": (2048, 2048), "gate_up": (16384, 2048), "down": (2048, 8192)}
LM_HEAD = (128256, 2048)
ROWS = (64, 128, 256)


def main() -> None:
    device = torch.device("cuda")
    bw = copy_bandwidth(device)
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s", flush=True)
    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    result.update(copy_bytes_per_s=bw, single=[], chains=[])
    shapes = dict(SHAPES, lm_head=LM_HEAD)
    for lib in ("cublas", "cublaslt", "cublas", "cublaslt"):
        torch.backends.cuda.preferred_blas_library(lib)
        for name, (n, k) in shapes.items():
            copies = max(2, -(-(256 << 20) // (n * k * 2)))
            ws = [torch.randn(n, k, device="cuda", dtype=DTYPE) * 0.02 for _ in range(copies)]
            for m in ROWS:
                x = torch.randn(m, k, device="cuda", dtype=DTYPE)
                us = 1e3 * graph_ms([lambda w=w, x=x: F.linear(x, w) for w in ws], device)
                floor = n * k * 2 / bw * 1e6
                result["single"].append({"lib": lib, "linear": name, "rows": m, "us": us, "floor_us": floor})
                print(f"{lib:8s} {name:8s} M={m:3d} {us:7.2f} us x{us / floor:.2f}", flush=True)
            del ws
        layers = [{name: torch.randn(n, k, device="cuda", dtype=DTYPE) for name, (n, k) in SHAPES.items()}
                  for _ in range(16)]  # fmt: skip
        for m in ROWS:
            xs = {name: torch.randn(m, k, device="cuda", dtype=DTYPE) for name, (n, k) in SHAPES.items()}

            def chain(xs=xs, layers=layers) -> None:
                for layer in layers:
                    for name in SHAPES:
                        F.linear(xs[name], layer[name])

            us = 1e3 * graph_ms([chain], device)
            floor = 16 * sum(n * k * 2 for n, k in SHAPES.values()) / bw * 1e6
            result["chains"].append({"lib": lib, "rows": m, "us": us, "floor_us": floor})
            print(f"{lib:8s} chain M={m:3d} {us:8.1f} us x{us / floor:.2f}", flush=True)
        del layers
        torch.cuda.empty_cache()
    with open(os.path.join(os.environ.get("OUT", "."), "blas.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
