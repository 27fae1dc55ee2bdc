"""Session 14: are Qwen3-0.6B's decode linears at 64 rows on good skinny plans?

``skinny_config``'s rule comes from sweeps of the Llama-3.2-1B's linears (hidden 2,048). Qwen3-0.6B's are
half as wide (hidden 1,024: qkv 1,024 -> 4,096, o_proj 2,048 -> 1,024, gate_up 1,024 -> 6,144, down
3,072 -> 1,024; 4-13 MB of weights each), so each is 1.4-4.3 us of bytes and its fixed cost weighs more.
This sweeps tile shapes, input splits and depths per linear (plain products; gate_up also gated, as the
engine runs it), CUDA-graph replays over rotating weight copies, then chains 28 layers' four linears with
PDL: cuBLAS, today's plans, and the fastest plain plan of each. Writes ``$OUT/linears-qwen3.json``.
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
from session9_linears import config_dict, graph_time_us, weights_for

from pagedllm.bench.kernels import copy_bandwidth
from pagedllm.model.layers.skinny_linear import (
    SkinnyConfig,
    gated_skinny_config,
    skinny_config,
    skinny_linear,
)

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "330"))
DTYPE = torch.bfloat16
ROWS = 64
LAYERS = 28
SHAPES = {"qkv": (4096, 1024), "o_proj": (1024, 2048), "gate_up": (6144, 1024), "down": (1024, 3072)}


def configs(n: int, k: int, gated: bool) -> list[SkinnyConfig]:
    plan = gated_skinny_config(n, k) if gated else skinny_config(n, k)
    out = [plan]
    for bn, bk, sk, stages in itertools.product((16, 32, 64, 128), (128, 256), (1, 2, 4), (3, 4)):
        if gated and (sk > 1 or bn < 32):
            continue
        tile_n = bn // 2 if gated else bn
        warps = 8 if bn >= 128 else 4
        if k % (sk * bk) or stages * (64 + bn) * bk * 2 > 200_000 or (n // (2 if gated else 1)) % tile_n:
            continue
        if stages > k // (sk * bk) or (n // bn) * sk < 32:  # deeper than the loop; or too few programs
            continue
        out.append(SkinnyConfig(64, tile_n, bk, sk, warps, stages))
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
        with open(os.path.join(os.environ.get("OUT", "."), "linears-qwen3.json"), "w") as f:
            json.dump(result, f, indent=1)

    cases = [(name, n, k, False) for name, (n, k) in SHAPES.items()] + [("gate_up_gated", 6144, 1024, True)]
    for name, n, k, gated in cases:
        ws = weights_for(n, k)
        x = torch.randn(ROWS, k, device="cuda", dtype=DTYPE)
        n_out = n // 2 if gated else n
        y = torch.empty(ROWS, n_out, device="cuda", dtype=DTYPE)
        full = F.linear(x, ws[0]).float()
        ref = F.silu(full[:, :n_out]) * full[:, n_out:] if gated else full
        floor_us = n * k * 2 / bw * 1e6
        if not gated:
            cublas[name] = graph_time_us(lambda i, ws=ws, x=x: F.linear(x, ws[i % len(ws)]), len(ws))
            print(f"{name:14s} cublas {cublas[name]:7.2f} us (floor {floor_us:.2f})", flush=True)
        plan = gated_skinny_config(n, k) if gated else skinny_config(n, k)
        for cfg in configs(n, k, gated):
            if time.monotonic() - START > BUDGET_S:
                break
            try:
                got = skinny_linear(x, ws[0], cfg, out=y, gated=gated).float()
                err = ((got - ref).abs().max() / ref.abs().max()).item()

                def call(i, c=cfg, x=x, ws=ws, y=y, g=gated):
                    return skinny_linear(x, ws[i % len(ws)], c, out=y, gated=g)

                us = graph_time_us(call, len(ws))
            except Exception as exc:  # a tile shape the compiler refuses
                print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            current = cfg == plan
            rows_out.append({"linear": name, "config": config_dict(cfg), "us": us, "x_floor": us / floor_us,
                             "rel_err": err, "current": current})  # fmt: skip
            print(f"  {'*' if current else ' '} {cfg} {us:7.2f} us err {err:.1e}", flush=True)
            if err < 2e-2 and (name not in best or us < best[name][0]):
                best[name] = (us, cfg)
        print(f"{name}: best {best.get(name)}", flush=True)
        del ws
        torch.cuda.empty_cache()
        dump()

    # 28 layers' four linears back to back with PDL, distinct weights, as a decode step reads them.
    layers = [{nm: torch.randn(n, k, device="cuda", dtype=DTYPE) * 0.02 for nm, (n, k) in SHAPES.items()}
              for _ in range(LAYERS)]  # fmt: skip
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
            if plan == "best" and any(nm not in best for nm in SHAPES):
                continue
            chain.setdefault(plan, []).append(graph_time_us(lambda i, p=plan: run(p), 1))
    chain["floor_us"] = LAYERS * sum(n * k * 2 for n, k in SHAPES.values()) / bw * 1e6
    print("chain", chain, flush=True)
    dump()


if __name__ == "__main__":
    main()
