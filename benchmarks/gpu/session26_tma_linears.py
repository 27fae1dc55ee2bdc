"""Session 26: do TMA-loaded tiles let the Triton linear match cuBLAS at 256 rows?

Session 15 found the skinny kernel's matrix-product tiles (pointer loads, cp.async) 10-35% slower than
cuBLAS on the Llama-3.2-1B's linears at 256 rows, so those steps run cuBLAS and get none of the fused
epilogues or PDL. This sweeps the same kernel with its x and weight tiles loaded by TMA descriptors
(``SkinnyConfig.tma``), against cuBLAS and against the engine's pointer plan (``wide_config``), for one
model's linears, plain and gated (gate_up with SiLU-and-multiply, against cuBLAS plus the engine's
activation kernel); CUDA-graph replays over rotating weight copies (``session9_linears.graph_time_us``).
Up to 64 rows it times the engine's weight-streaming plan by pointers and by TMA, and TMA variants of its
input depth and stages. ``python3 session26_tma_linears.py OUT.json MODEL [ROWS ...]``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import config_dict, graph_time_us, weights_for
from session15_linears256 import MODELS

from pagedllm.bench.kernels import copy_bandwidth
from pagedllm.model.layers import fused_ops
from pagedllm.model.layers.skinny_linear import (
    SkinnyConfig,
    gated_skinny_config,
    skinny_config,
    skinny_linear,
    wide_config,
)

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "240"))
DTYPE = torch.bfloat16
SMEM = 220 * 1024


def smem_bytes(c: SkinnyConfig, tiles: int) -> int:
    return c.num_stages * (c.block_m + tiles * c.block_n) * c.block_k * 2


def first_configs(m: int, n_out: int, k: int, gated: bool) -> list[SkinnyConfig]:
    tiles = 2 if gated else 1
    out = []
    for bm, bn, bk, sk in itertools.product((64, 128, 256), (64, 128, 256), (64, 128), (1, 2, 4)):
        if gated and sk > 1:
            continue
        if bm > m or k % (sk * bk) or k // (sk * bk) < 2:
            continue
        programs = -(-m // bm) * -(-n_out // bn) * sk
        if not 32 <= programs <= 1024:
            continue
        warps = 4 if bm * bn * tiles <= 128 * 128 else 8
        if bm * bn * tiles // (warps * 32) > 128:  # float32 accumulators a thread
            continue
        for stages in (4, 3, 2):
            c = SkinnyConfig(bm, bn, bk, sk, warps, stages, tma=True)
            if smem_bytes(c, tiles) <= SMEM:
                out.append(c)
                break
    return out


def narrow_variants(plan: SkinnyConfig, gated: bool) -> list[SkinnyConfig]:
    """Up to 64 rows: the engine's weight-streaming plan by TMA, with other input depths and stages."""
    tiles = 2 if gated else 1
    out = []
    for bk, stages in itertools.product((64, 128, 256), (3, 4, 5, 6)):
        c = dataclasses.replace(plan, block_k=bk, num_stages=stages, tma=True)
        if smem_bytes(c, tiles) <= SMEM and c != dataclasses.replace(plan, tma=True):
            out.append(c)
    return out


def around(c: SkinnyConfig, gated: bool) -> list[SkinnyConfig]:
    tiles = 2 if gated else 1
    out = []
    for warps, stages in itertools.product((4, 8), (2, 3, 4, 5, 6)):
        o = dataclasses.replace(c, num_warps=warps, num_stages=stages)
        if o != c and smem_bytes(o, tiles) <= SMEM and c.block_m * c.block_n * tiles // (warps * 32) <= 128:
            out.append(o)
    return out


def sweep_case(name: str, n: int, k: int, gated: bool, rows: int, bw: float, budget_end: float) -> tuple:
    """Times cuBLAS, the pointer plan and TMA plans on one linear; returns (summary entry, timed rows)."""
    ws = weights_for(n, k)
    x = torch.randn(rows, k, device="cuda", dtype=DTYPE)
    n_out = n // 2 if gated else n
    y = torch.empty(rows, n_out, device="cuda", dtype=DTYPE)
    full = F.linear(x, ws[0]).float()
    ref = F.silu(full[:, :n_out]) * full[:, n_out:] if gated else full
    key = f"{name}@{rows}"

    def blas(i: int) -> torch.Tensor:
        h = F.linear(x, ws[i % len(ws)])
        return fused_ops.silu_and_mul(h) if gated else h

    entry: dict = {"floor_us": n * k * 2 / bw * 1e6, "flops_us_at_795T": 2 * rows * n * k / 795e12 * 1e6}
    entry["cublas_us"] = graph_time_us(blas, len(ws))
    print(f"== {key}: floor {entry['floor_us']:.2f} us, flops {entry['flops_us_at_795T']:.2f}, "
          f"cuBLAS {entry['cublas_us']:.2f}", flush=True)  # fmt: skip
    timed_rows: list[dict] = []

    def timed(cfg: SkinnyConfig, stage: str) -> float | None:
        def call(i: int) -> torch.Tensor:
            return skinny_linear(x, ws[i % len(ws)], cfg, out=y, gated=gated, use_pdl=False)

        try:
            err = ((call(0).float() - ref).abs().max() / ref.abs().max()).item()
            us = graph_time_us(call, len(ws))
        except Exception as exc:  # a tile shape the compiler refuses
            print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
            return None
        ratio = us / entry["cublas_us"]
        timed_rows.append({"case": key, "stage": stage, "config": config_dict(cfg), "us": us,
                           "x_cublas": ratio, "rel_err": err})  # fmt: skip
        c = cfg
        tiles = f"{c.block_m}x{c.block_n}x{c.block_k} s{c.split_k} w{c.num_warps} st{c.num_stages}"
        print(f"  {stage} {tiles} tma={cfg.tma}: {us:.2f} us x{ratio:.2f} err {err:.1e}", flush=True)
        return us if err < 2e-2 else None

    if rows <= 64:  # the engine's weight-streaming plans (skinny_config)
        plan = gated_skinny_config(n, k, rows=rows) if gated else skinny_config(n, k, rows=rows)
    else:  # the engine's pointer plans before session 26 (wide_config)
        plan = wide_config(n_out, k, rows, weight_tiles=2) if gated else wide_config(n, k, rows)
    if plan is not None:
        plan = dataclasses.replace(plan, tma=False)
        entry["pointer_plan_us"] = timed(plan, "plan")
        entry["plan_tma_us"] = timed(dataclasses.replace(plan, tma=True), "plan+tma")
    candidates = narrow_variants(plan, gated) if rows <= 64 and plan else first_configs(rows, n_out, k, gated)
    found = []
    for cfg in candidates:
        if time.monotonic() > budget_end:
            break
        us = timed(cfg, "1")
        if us is not None:
            found.append((us, cfg))
    found.sort(key=lambda t: t[0])
    for _, best in found[: 0 if rows <= 64 else 3]:
        for cfg in around(best, gated):
            if time.monotonic() > budget_end + 0.15 * BUDGET_S:
                break
            us = timed(cfg, "2")
            if us is not None:
                found.append((us, cfg))
    if found:
        us, cfg = min(found, key=lambda t: t[0])
        entry["best_tma_us"], entry["best_tma"] = us, config_dict(cfg)
        print(f"  best TMA {us:.2f} us ({us / entry['cublas_us']:.2f} of cuBLAS): {cfg}", flush=True)
    return entry, timed_rows


def main() -> None:
    path, model = sys.argv[1], sys.argv[2]
    row_counts = [int(r) for r in sys.argv[3:]] or [256]
    _, shapes = MODELS[model]
    bw = copy_bandwidth(torch.device("cuda"))
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s, {model}", flush=True)
    rows_out: list[dict] = []
    summary: dict = {}
    cases = [(name, n, k, False) for name, (n, k) in shapes.items() if name != "gate_up"]
    cases.append(("gate_up_gated", *shapes["gate_up"], True))
    share = BUDGET_S / len(cases)
    for rows in row_counts:
        for i, (name, n, k, gated) in enumerate(cases):
            end = START + share * (i + 1) + BUDGET_S * row_counts.index(rows)
            entry, timed_rows = sweep_case(name, n, k, gated, rows, bw, end)
            summary[f"{name}@{rows}"] = entry
            rows_out.extend(timed_rows)
            with open(path, "w") as f:
                json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                           "model": model, "copy_bytes_per_s": bw, "summary": summary, "rows": rows_out},
                          f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
