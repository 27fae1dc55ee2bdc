"""Session 16: does a Triton linear with TMA loads match cuBLAS at 256 rows?

Session 15's sweep at 256 rows (``session15_linears256.py``) used the skinny kernel, whose tiles are
pointer loads, and its best plans lost to cuBLAS on the 1B's plain linears (qkv 10.8 us against 8.9). The
prefill kernel gained 7-14% from TMA loads on Hopper (session 6). This times a bare TMA matrix product
(host-made descriptors over the input, the weight and the output; 128/256 rows x 64/128/256 features x
64/128-deep tiles, 3-5 stages, 4/8 warps, with and without Triton's warp specialization, and an input
split with float32 atomics into a zeroed buffer plus a cast, both counted) on a model's four linears,
CUDA-graph replays over rotating weight copies, against cuBLAS. No epilogues: if this does not reach
cuBLAS, none of the fused forms will.

``python3 session16_tma_gemm.py {1b,qwen3} [rows]``; writes ``$OUT/tma-gemm-<model>-<rows>.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import graph_time_us, weights_for

from pagedllm.bench.kernels import copy_bandwidth

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "200"))
DTYPE = torch.bfloat16
MODELS = {
    "1b": {"qkv": (3072, 2048), "o_proj": (2048, 2048), "gate_up": (16384, 2048), "down": (2048, 8192)},
    "qwen3": {"qkv": (4096, 1024), "o_proj": (1024, 2048), "gate_up": (6144, 1024), "down": (1024, 3072)},
}
SMEM = 220 * 1024


@triton.jit
def _tma_linear_kernel(
    x_desc,
    w_desc,
    y_desc,
    y32_ptr,
    k_per_split,
    n_out,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
    NUM_STAGES: tl.constexpr,
    WARP_SPECIALIZE: tl.constexpr,
):
    off_m = tl.program_id(0) * BLOCK_M  # row tiles vary fastest: they share the weight tile in L2
    off_n = tl.program_id(1) * BLOCK_N
    k0 = tl.program_id(2) * k_per_split
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in tl.range(k0, k0 + k_per_split, BLOCK_K, num_stages=NUM_STAGES, warp_specialize=WARP_SPECIALIZE):
        a = x_desc.load([off_m, k])
        b = w_desc.load([off_n, k])
        acc = tl.dot(a, b.T, acc)
    if SPLIT_K == 1:
        y_desc.store([off_m, off_n], acc.to(y_desc.dtype))
    else:
        r = off_m + tl.arange(0, BLOCK_M)
        c = off_n + tl.arange(0, BLOCK_N)
        tl.atomic_add(y32_ptr + r[:, None] * n_out + c[None, :], acc, sem="relaxed")


def configs(m: int, n: int, k: int) -> list[tuple]:
    out = []
    tiles = itertools.product((128, 256), (64, 128, 256), (64, 128), (1, 2, 4), (False, True))
    for bm, bn, bk, sk, ws in tiles:
        if m % bm or n % bn or k % (sk * bk) or k // (sk * bk) < 3:
            continue
        warps = 8 if bm * bn >= 128 * 128 else 4
        if bm * bn // (warps * 32) > 128:  # accumulator registers a thread
            continue
        programs = (m // bm) * (n // bn) * sk
        if not 24 <= programs <= 1024:
            continue
        for stages in (5, 4, 3):
            if stages * (bm + bn) * bk * 2 + bm * bn * 2 <= SMEM:
                out.append((bm, bn, bk, sk, warps, stages, ws))
                break
    return out


def launcher(x: torch.Tensor, ws: list[torch.Tensor], y: torch.Tensor, y32: torch.Tensor, cfg: tuple):
    bm, bn, bk, sk, warps, stages, wspec = cfg
    m, k = x.shape
    n = ws[0].shape[0]
    x_desc = TensorDescriptor.from_tensor(x, [bm, bk])
    w_descs = [TensorDescriptor.from_tensor(w, [bn, bk]) for w in ws]
    y_desc = TensorDescriptor.from_tensor(y, [bm, bn])

    def call(i: int) -> None:
        if sk > 1:
            y32.zero_()
        _tma_linear_kernel[(m // bm, n // bn, sk)](
            x_desc, w_descs[i % len(ws)], y_desc, y32, k // sk, n, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
            SPLIT_K=sk, NUM_STAGES=stages, WARP_SPECIALIZE=wspec, num_warps=warps, num_stages=stages,
        )  # fmt: skip
        if sk > 1:
            y.copy_(y32)

    return call


def main() -> None:
    model = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    shapes = MODELS[model]
    bw = copy_bandwidth(torch.device("cuda"))
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s, {model} at {rows} rows", flush=True)
    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "triton": triton.__version__, "copy_bytes_per_s": bw, "rows_per_step": rows,
                    "cublas": {}, "best": {}, "rows": []}  # fmt: skip
    path = os.path.join(os.environ.get("OUT", "."), f"tma-gemm-{model}-{rows}.json")
    for name, (n, k) in shapes.items():
        ws = weights_for(n, k)
        x = torch.randn(rows, k, device="cuda", dtype=DTYPE)
        y = torch.empty(rows, n, device="cuda", dtype=DTYPE)
        y32 = torch.zeros(rows, n, device="cuda", dtype=torch.float32)
        ref = F.linear(x, ws[0]).float()
        blas_us = graph_time_us(lambda i, x=x, ws=ws: F.linear(x, ws[i % len(ws)]), len(ws))
        result["cublas"][name] = blas_us
        floor_us = n * k * 2 / bw * 1e6
        print(f"{name:8s} cublas {blas_us:7.2f} us (floor {floor_us:.2f})", flush=True)
        for cfg in configs(rows, n, k):
            if time.monotonic() - START > BUDGET_S:
                break
            try:
                call = launcher(x, ws, y, y32, cfg)
                call(0)
                err = ((y.float() - ref).abs().max() / ref.abs().max()).item()
                us = graph_time_us(call, len(ws))
            except Exception as exc:  # a tile shape the compiler refuses
                print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                continue
            result["rows"].append({"linear": name, "config": cfg, "us": us, "x_cublas": us / blas_us,
                                   "x_floor": us / floor_us, "rel_err": err})  # fmt: skip
            print(f"  {cfg} {us:7.2f} us x{us / blas_us:.2f} of cuBLAS, err {err:.1e}", flush=True)
            best = result["best"].get(name)
            if err < 2e-2 and (best is None or us < best["us"]):
                result["best"][name] = {"us": us, "config": cfg, "x_cublas": us / blas_us}
        print(f"{name}: best {result['best'].get(name)}", flush=True)
        del ws
        torch.cuda.empty_cache()
        with open(path, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
