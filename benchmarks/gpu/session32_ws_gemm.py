"""Session 32: does Triton's warp specialization speed up the 1B's 256-row MLP products on Hopper?

The 1B's 256-row decode step spends ~31 us a layer in the gated gate_up (TMA plan, 22 us of bytes and
21.6 us of FLOPs at the measured matmul rate) and ~20 us in cuBLAS's down (11.2 us of bytes). Both sit
near the ridge point, where a pipeline that overlaps loads and MMAs better is what would pay. This times,
alone (CUDA-graph replays of 20 launches over rotating weight copies, median of rounds):
- cuBLAS (``F.linear``), and for gate_up the engine's gated TMA kernel (``skinny_linear``);
- a minimal TMA product with the same tiles, its K loop a plain ``tl.range`` (software pipelined) or
  ``tl.range(..., warp_specialize=True)`` (producer and consumer warps), gated or plain.

    python3 benchmarks/gpu/session32_ws_gemm.py OUT.json
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from typing import Any

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from pagedllm.bench.environment import environment
from pagedllm.model.layers import skinny_linear


@triton.jit
def _product_kernel(
    x_desc,
    w_desc,
    y_ptr,
    M,
    N,  # output features (a gated product's: each half's)
    K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GATED: tl.constexpr,
    WS: tl.constexpr,
    STAGES: tl.constexpr,
):
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    pid_m = pid % num_m
    pid_n = pid // num_m
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kk in tl.range(0, K, BLOCK_K, num_stages=STAGES, warp_specialize=WS):
        x = x_desc.load([pid_m * BLOCK_M, kk])
        w = w_desc.load([pid_n * BLOCK_N, kk])
        acc = tl.dot(x, tl.trans(w), acc)
        if GATED:
            up = w_desc.load([N + pid_n * BLOCK_N, kk])
            acc_up = tl.dot(x, tl.trans(up), acc_up)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rm < M)[:, None] & (rn < N)[None, :]
    ptrs = y_ptr + rm[:, None] * N + rn[None, :]
    dtype = y_ptr.dtype.element_ty
    if GATED:
        gate = acc.to(dtype).to(tl.float32)
        silu = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
        tl.store(ptrs, (silu * acc_up.to(dtype).to(tl.float32)).to(dtype), mask=mask)
    else:
        tl.store(ptrs, acc.to(dtype), mask=mask)


def product(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, plan: tuple, gated: bool, ws: bool) -> None:
    bm, bn, bk, warps, stages = plan
    M, K = x.shape
    N = y.shape[1]
    x_desc = TensorDescriptor.from_tensor(x, [bm, bk])
    w_desc = TensorDescriptor.from_tensor(w, [bn, bk])
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    _product_kernel[grid](
        x_desc, w_desc, y, M, N, K, bm, bn, bk, GATED=gated, WS=ws, STAGES=stages, num_warps=warps
    )


def timed_us(fn: Any, copies: int, launches: int = 20, rounds: int = 5) -> float:
    fn(0)  # compile
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(launches):
            fn(i % copies)
    graph.replay()
    times = []
    for _ in range(rounds):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(begin.elapsed_time(end) * 1e3 / launches)
    return statistics.median(times)


def case(name: str, rows: int, n: int, k: int, gated: bool, plans: list[tuple]) -> dict[str, Any]:
    torch.manual_seed(0)
    weight_rows = 2 * n if gated else n
    copies = max(1, -(-160 * 2**20 // (weight_rows * k * 2)))  # > 3x the L2 in all
    xs = [torch.randn(rows, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
    ws = [torch.randn(weight_rows, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(copies)]
    y = torch.empty(rows, n, device="cuda", dtype=torch.bfloat16)

    def cublas(i: int) -> torch.Tensor:
        out = F.linear(xs[i], ws[i])
        if gated:
            out = F.silu(out[:, :n]) * out[:, n:]
        return out

    reference = cublas(0).float()
    result: dict[str, Any] = {"rows": rows, "n": n, "k": k, "gated": gated, "copies": copies, "us": {}}
    bytes_us = weight_rows * k * 2 / 3.0e12 * 1e6
    result["weight_bytes_us_at_3TBps"] = bytes_us
    result["us"]["cublas"] = timed_us(cublas, copies)
    print(f"  {name}: cublas {result['us']['cublas']:.2f} us", flush=True)
    if gated:
        config = skinny_linear.gated_skinny_config(weight_rows, k, rows=rows)
        result["engine_config"] = str(config)

        def engine(i: int) -> None:
            skinny_linear.skinny_linear(xs[i], ws[i], config, out=y, use_pdl=False, gated=True)

        result["us"]["engine"] = timed_us(engine, copies)
    for ws_on, plan in itertools.product((False, True), plans):  # specialized last: they may hang
        if ws_on and plan[3] < 8:
            continue  # call 2: a specialized launch of 4 warps never finished (the 1B's gate_up, 128 x 128)
        label = "x".join(map(str, plan[:3])) + f" w{plan[3]} s{plan[4]}" + (" ws" if ws_on else "")
        try:

            def ours(i: int, plan: tuple = plan, ws_on: bool = ws_on) -> None:
                product(xs[i], ws[i], y, plan, gated, ws_on)

            us = timed_us(ours, copies)
            ours(0)
            err = float((y.float() - reference).norm() / reference.norm())
            result["us"][label] = us
            result.setdefault("rel_err", {})[label] = err
            print(f"  {name}: {label:28s} {us:7.2f} us  err {err:.2e}", flush=True)
        except Exception as exc:  # a plan that does not compile: recorded
            result.setdefault("errors", {})[label] = f"{type(exc).__name__}: {str(exc)[:300]}"
    print(f"== {name} (bytes {bytes_us:.1f} us)", flush=True)
    for label, us in sorted(result["us"].items(), key=lambda t: t[1]):
        print(f"  {label:28s} {us:7.2f} us  {result.get('rel_err', {}).get(label, '')}", flush=True)
    for label, err in result.get("errors", {}).items():
        print(f"  {label:28s} {err}", flush=True)
    return result


def main() -> int:
    out: dict[str, Any] = {**environment(), "triton": triton.__version__, "cases": {}}
    gated_plans = [(128, 128, 64, 8, 4), (128, 128, 64, 8, 3), (128, 128, 64, 4, 4), (64, 128, 64, 4, 4)]
    down_plans = [(64, 64, 128, 4, 4), (128, 64, 64, 4, 4), (128, 64, 64, 8, 5), (64, 128, 64, 8, 4)]
    small_plans = [(64, 128, 128, 4, 4), (64, 64, 128, 4, 6), (128, 64, 64, 8, 4)]
    cases = [
        ("1B gate_up gated, 256 rows", 256, 8192, 2048, True, gated_plans),
        ("1B down, 256 rows", 256, 2048, 8192, False, down_plans),
        ("1B o_proj, 256 rows", 256, 2048, 2048, False, small_plans),
        ("1B qkv, 256 rows", 256, 3072, 2048, False, small_plans),
    ]
    for name, rows, n, k, gated, plans in cases:
        out["cases"][name] = case(name, rows, n, k, gated, plans)
        with open(sys.argv[1], "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
