"""Session 17: does cuBLAS run a model's linears faster at 256 rows with the weight stored the other way?

Session 16 measured the 1B's four cuBLAS linears at 256 rows at 1.65x of max(bytes, FLOPs) a layer, and
neither pointer-loaded nor TMA Triton tiles beat them. cuBLAS picks its kernel by heuristics per layout,
so this asks whether another layout or library picks a faster one, on the same bytes:

- ``tn``: ``F.linear(x, w)`` with ``w`` [out, in], as the engine runs it;
- ``nn``: ``x @ wt`` with ``wt`` [in, out] contiguous (the weight transposed once, at load);
- each of those with ``torch.backends.cuda.preferred_blas_library("cublaslt")`` (suffix ``_lt``).

Each linear is timed alone (CUDA-graph replays over rotating weight copies, >= 256 MiB), and the four as
a chain of 16 layers (distinct weights per layer, as a step runs them). The kernel cuBLAS launched is
named from one profiled call of each.

``python3 session17_cublas_layouts.py {1b,8b,qwen3} [rows ...]``; writes
``$OUT/cublas-layouts-<model>.json``.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import copy_bandwidth, graph_time_us

DTYPE = torch.bfloat16
MODELS = {
    "1b": {
        "qkv": (3072, 2048),
        "o_proj": (2048, 2048),
        "gate_up": (16384, 2048),
        "down": (2048, 8192),
        "lm_head": (128256, 2048),
    },
    "8b": {"qkv": (6144, 4096), "o_proj": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)},
    "qwen3": {
        "qkv": (4096, 1024),
        "o_proj": (1024, 2048),
        "gate_up": (6144, 1024),
        "down": (1024, 3072),
        "lm_head": (151936, 1024),
    },
}
LAYERS = {"1b": 16, "8b": 8, "qwen3": 28}


def make_call(layout: str, x: torch.Tensor, weights: list[torch.Tensor]):
    if layout == "tn":
        return lambda i: F.linear(x, weights[i % len(weights)])
    return lambda i: torch.mm(x, weights[i % len(weights)])


def kernel_names(fn) -> list[str]:
    fn(0)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn(0)
        torch.cuda.synchronize()
    return sorted({e.name for e in prof.events() if e.device_type.name == "CUDA"})


def set_library(lt: bool) -> None:
    torch.backends.cuda.preferred_blas_library("cublaslt" if lt else "cublas")


def main() -> None:
    model = sys.argv[1]
    rows_list = [int(r) for r in sys.argv[2:]] or [256]
    shapes = MODELS[model]
    bw = copy_bandwidth()
    out: dict = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "model": model,
        "copy_bandwidth": bw,
        "rows": [],
    }
    print(f"copy bandwidth {bw / 1e12:.2f} TB/s", flush=True)
    for rows in rows_list:
        x = torch.randn(rows, max(k for _, k in shapes.values()), device="cuda", dtype=DTYPE)
        for name, (n, k) in shapes.items():
            copies = max(4, -(-(256 << 20) // (n * k * 2)))
            w = [torch.randn(n, k, device="cuda", dtype=DTYPE) * 0.02 for _ in range(copies)]
            wt = [t.t().contiguous() for t in w]
            xk = x[:, :k].contiguous()
            ref = F.linear(xk, w[0])
            floor_us = n * k * 2 / bw * 1e6
            for layout in ("tn", "nn"):
                for lt in (False, True):
                    set_library(lt)
                    fn = make_call(layout, xk, w if layout == "tn" else wt)
                    err = (fn(0).float() - ref.float()).abs().max().item()
                    us = [graph_time_us(fn, len(w)) for _ in range(3)]
                    row = {
                        "rows": rows,
                        "linear": name,
                        "layout": layout + ("_lt" if lt else ""),
                        "us_each": us,
                        "us": sorted(us)[1],
                        "bytes_floor_us": floor_us,
                        "max_abs_diff_vs_tn": err,
                        "kernels": kernel_names(fn),
                    }
                    out["rows"].append(row)
                    print(
                        f"{rows:4d} {name:8s} {row['layout']:6s} {row['us']:8.2f} us  floor {floor_us:6.2f}"
                        f"  {row['kernels']}",
                        flush=True,
                    )
            del w, wt
        # The four (not the LM head) as a chain of layers with distinct weights, as a step runs them.
        names = [m for m in ("qkv", "o_proj", "gate_up", "down") if m in shapes]
        layer_w = [
            {m: torch.randn(*shapes[m], device="cuda", dtype=DTYPE) * 0.02 for m in names}
            for _ in range(LAYERS[model])
        ]
        for layout in ("tn", "nn"):
            ws = (
                layer_w
                if layout == "tn"
                else [{m: t.t().contiguous() for m, t in lw.items()} for lw in layer_w]
            )
            xs = {m: x[:, : shapes[m][1]].contiguous() for m in names}
            for lt in (False, True):
                set_library(lt)

                def chain(i: int, ws=ws, layout=layout, xs=xs, names=names) -> None:
                    for lw in ws:
                        for m in names:
                            if layout == "tn":
                                F.linear(xs[m], lw[m])
                            else:
                                torch.mm(xs[m], lw[m])

                us = [graph_time_us(chain, 1) for _ in range(3)]
                row = {
                    "rows": rows,
                    "linear": f"chain of {LAYERS[model]} layers",
                    "layout": layout + ("_lt" if lt else ""),
                    "us_each": us,
                    "us": sorted(us)[1],
                }
                out["rows"].append(row)
                print(f"{rows:4d} chain    {row['layout']:6s} {row['us']:8.2f} us", flush=True)
            if layout == "nn":
                del ws
        del layer_w
        set_library(False)
    dst = os.path.join(os.environ.get("OUT", "."), f"cublas-layouts-{model}.json")
    with open(dst, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
