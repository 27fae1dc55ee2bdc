"""Session 11: do the 1B's decode linears at 64 rows lose their time re-reading the rows from L2?

Each program of the skinny linear reads all 64 rows of its input share (64 x K x 2 bytes) from L2 while
it streams ``BLOCK_N`` weight rows from DRAM, so a launch moves ``N / BLOCK_N`` copies of the input
through L2 on top of the weights: 48 MB for qkv's 12.6 MB of weights at ``BLOCK_N = 16``. Session 9's
sweep kept only tile shapes of >= 100 programs, which excludes wide tiles (few input copies). This
sweeps them: ``BLOCK_N`` 16-256, no program-count filter, then chains 16 layers' four linears with PDL
(the best per linear against ``skinny_config``'s and cuBLAS). Writes ``$OUT/linears-wide.json``.
``S11_AROUND_PLAN=1`` sweeps pipeline depth and warps around ``skinny_config``'s plans instead.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import SHAPES, config_dict, graph_time_us, stage2_configs, weights_for

from pagedllm.bench.kernels import copy_bandwidth
from pagedllm.model.layers.skinny_linear import SkinnyConfig, skinny_config, skinny_linear

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "360"))
DTYPE = torch.bfloat16
ROWS = 64


def wide_configs(n: int, k: int) -> list[SkinnyConfig]:
    if os.environ.get("S11_AROUND_PLAN") == "1":  # call 8: pipeline depth and warps around today's plan
        plan = skinny_config(n, k)
        assert plan is not None
        return [plan, *stage2_configs(plan)]
    out = [skinny_config(n, k)]
    for bn, bk, sk, stages in itertools.product((32, 64, 128, 256), (128, 256), (1, 2), (3, 4)):
        warps = 8 if bn >= 128 else 4
        if k % (sk * bk) or stages * (64 + bn) * bk * 2 > 200_000 or -(-n // bn) * sk < 8:
            continue
        out.append(SkinnyConfig(64, bn, bk, sk, warps, stages))
    return [c for c in dict.fromkeys(out) if c is not None]


def main() -> None:
    bw = copy_bandwidth(torch.device("cuda"))
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s", flush=True)
    rows_out: list[dict] = []
    best: dict[str, tuple[float, SkinnyConfig]] = {}
    cublas: dict[str, float] = {}
    chain: dict = {}

    def dump() -> None:
        result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "copy_bytes_per_s": bw,
                  "note": sys.argv[1:], "rows_per_step": ROWS, "cublas": cublas, "chain": chain,
                  "best": {n: {"us": t, "config": config_dict(c)} for n, (t, c) in best.items()},
                  "rows": rows_out}  # fmt: skip
        with open(os.path.join(os.environ.get("OUT", "."), "linears-wide.json"), "w") as f:
            json.dump(result, f, indent=1)

    for name, (n, k) in SHAPES.items():
        ws = weights_for(n, k)
        x = torch.randn(ROWS, k, device="cuda", dtype=DTYPE)
        y = torch.empty(ROWS, n, device="cuda", dtype=DTYPE)
        ref = F.linear(x, ws[0]).float()
        floor_us = n * k * 2 / bw * 1e6
        cublas[name] = graph_time_us(lambda i, ws=ws, x=x: F.linear(x, ws[i % len(ws)]), len(ws))
        print(f"{name:8s} cublas {cublas[name]:7.2f} us (floor {floor_us:.1f})", flush=True)
        for cfg in wide_configs(n, k):
            if time.monotonic() - START > BUDGET_S:
                break
            try:
                got = skinny_linear(x, ws[0], cfg, out=y).float()
                err = ((got - ref).abs().max() / ref.abs().max()).item()
                us = graph_time_us(
                    lambda i, c=cfg, x=x, ws=ws, y=y: skinny_linear(x, ws[i % len(ws)], c, out=y), len(ws)
                )
            except Exception as exc:  # a tile shape the compiler refuses
                print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            current = cfg == skinny_config(n, k)
            rows_out.append({"linear": name, "config": config_dict(cfg), "us": us, "x_floor": us / floor_us,
                             "rel_err": err, "current": current})  # fmt: skip
            print(f"  {'*' if current else ' '} {cfg} {us:7.2f} us err {err:.1e}", flush=True)
            if err < 2e-2 and (name not in best or us < best[name][0]):
                best[name] = (us, cfg)
        torch.cuda.empty_cache()
        dump()

    # 16 layers' four linears back to back with PDL, distinct weights, as a decode step reads them.
    layers = [{nm: torch.randn(n, k, device="cuda", dtype=DTYPE) * 0.02 for nm, (n, k) in SHAPES.items()}
              for _ in range(16)]  # fmt: skip
    xs = {nm: torch.randn(ROWS, k, device="cuda", dtype=DTYPE) for nm, (n, k) in SHAPES.items()}
    ys = {nm: torch.empty(ROWS, n, device="cuda", dtype=DTYPE) for nm, (n, k) in SHAPES.items()}

    def run(plan: str) -> None:
        for layer in layers:
            for nm, (n, k) in SHAPES.items():
                if plan == "cublas":
                    torch.mm(xs[nm], layer[nm].t(), out=ys[nm])
                else:
                    cfg = skinny_config(n, k) if plan == "current" else best[nm][1]
                    skinny_linear(xs[nm], layer[nm], cfg, out=ys[nm], use_pdl=True)

    for _ in range(2):
        for plan in ("cublas", "current", "best"):
            if plan == "best" and len(best) < len(SHAPES):
                continue
            chain.setdefault(plan, []).append(graph_time_us(lambda i, p=plan: run(p), 1))
    chain["floor_us"] = 16 * sum(n * k * 2 for n, k in SHAPES.values()) / bw * 1e6
    print("chain", chain, flush=True)
    dump()


if __name__ == "__main__":
    main()
