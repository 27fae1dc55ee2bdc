"""Session 15: can the Triton linear match cuBLAS at 256 rows with GEMM-sized tiles?

At 256 rows the engine's decode linears are cuBLAS, so nothing around them can be fused into them or
start early (PDL). Session 9's sweep at 256 rows lost to cuBLAS by 28%, but it kept tiles to at most
128 x 64 outputs. This sweeps the skinny kernel with Hopper-sized tiles (64/128 rows x 64/128/256
features, 64/128-deep input tiles, input splits, 3-4 stages) for one model's four linears, plain and
gated (gate_up with SiLU-and-multiply, against cuBLAS plus torch's activation), CUDA-graph replays over
rotating weight copies; then chains the layers' linears: cuBLAS (with torch's activation, two kernels,
slower than the engine's one: ``session15_forms.py`` chains the engine's forms) against the best Triton
plans with PDL (gated gate_up). ``python3 session15_linears256.py {1b,qwen3,8b} [rows] [note]``;
writes ``$OUT/linears256-<model>-<rows>.json``.
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
from pagedllm.model.layers.skinny_linear import SkinnyConfig, skinny_linear

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "300"))
DTYPE = torch.bfloat16
MODELS = {  # (layers, {linear: (N, K)})
    "1b": (16, {"qkv": (3072, 2048), "o_proj": (2048, 2048), "gate_up": (16384, 2048), "down": (2048, 8192)}),
    "qwen3": (
        28,
        {"qkv": (4096, 1024), "o_proj": (1024, 2048), "gate_up": (6144, 1024), "down": (1024, 3072)},
    ),
    "8b": (
        32,
        {"qkv": (6144, 4096), "o_proj": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)},
    ),
}
SMEM = 200 * 1024


def smem_bytes(c: SkinnyConfig, gated: bool) -> int:
    return c.num_stages * (c.block_m + (2 if gated else 1) * c.block_n) * c.block_k * 2


def configs(m: int, n: int, k: int, gated: bool) -> list[SkinnyConfig]:
    n_out = n // 2 if gated else n
    out = []
    for bm, bn, bk, sk in itertools.product((64, 128), (64, 128, 256), (64, 128), (1, 2, 4)):
        if gated:
            if sk > 1:
                continue
            bn //= 2  # the config's block_n is each half's width
        warps = 8 if bm * bn >= 128 * 128 or (gated and bm * bn >= 128 * 64) else 4
        if bm * bn * (2 if gated else 1) // (warps * 32) > 128:  # accumulator registers a thread
            continue
        if k % (sk * bk) or k // (sk * bk) < 4 or n_out % bn:
            continue
        programs = -(-m // bm) * (n_out // bn) * sk
        if not 32 <= programs <= 2048:
            continue
        for stages in (4, 3):
            c = SkinnyConfig(bm, bn, bk, sk, warps, stages)
            if smem_bytes(c, gated) <= SMEM:
                out.append(c)
                break
    return out


def around(c: SkinnyConfig, gated: bool) -> list[SkinnyConfig]:
    out = []
    for warps, stages in itertools.product((4, 8), (2, 3, 4, 5)):
        o = SkinnyConfig(c.block_m, c.block_n, c.block_k, c.split_k, warps, stages)
        if o != c and smem_bytes(o, gated) <= SMEM:
            out.append(o)
    return out


def main() -> None:
    model = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    layers, shapes = MODELS[model]
    bw = copy_bandwidth(torch.device("cuda"))
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s, {model} at {rows} rows", flush=True)
    rows_out: list[dict] = []
    best: dict[str, tuple[float, SkinnyConfig]] = {}
    cublas: dict[str, float] = {}
    chain: dict = {}
    path = os.path.join(os.environ.get("OUT", "."), f"linears256-{model}-{rows}.json")

    def dump() -> None:
        result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "copy_bytes_per_s": bw,
                  "note": sys.argv[1:], "rows_per_step": rows, "cublas": cublas, "chain": chain,
                  "best": {nm: {"us": t, "config": config_dict(c)} for nm, (t, c) in best.items()},
                  "rows": rows_out}  # fmt: skip
        with open(path, "w") as f:
            json.dump(result, f, indent=1)

    def time_config(name, cfg, x, ws, y, ref, gated, floor_us, stage) -> None:
        try:
            got = skinny_linear(x, ws[0], cfg, out=y, gated=gated).float()
            err = ((got - ref).abs().max() / ref.abs().max()).item()

            def call(i, c=cfg):
                return skinny_linear(x, ws[i % len(ws)], c, out=y, gated=gated)

            us = graph_time_us(call, len(ws))
        except Exception as exc:  # a tile shape the compiler refuses
            print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:120]}")
            return
        rows_out.append({"linear": name, "config": config_dict(cfg), "us": us, "x_floor": us / floor_us,
                         "x_cublas": us / cublas[name], "rel_err": err, "stage": stage})  # fmt: skip
        print(f"    {cfg} {us:7.2f} us x{us / cublas[name]:.2f} of cuBLAS, err {err:.1e}", flush=True)
        if err < 2e-2 and (name not in best or us < best[name][0]):
            best[name] = (us, cfg)

    cases = [(name, n, k, False) for name, (n, k) in shapes.items()]
    cases.insert(3, ("gate_up_gated", *shapes["gate_up"], True))
    for name, n, k, gated in cases:
        ws = weights_for(n, k)
        x = torch.randn(rows, k, device="cuda", dtype=DTYPE)
        n_out = n // 2 if gated else n
        y = torch.empty(rows, n_out, device="cuda", dtype=DTYPE)
        full = F.linear(x, ws[0]).float()
        ref = F.silu(full[:, :n_out]) * full[:, n_out:] if gated else full
        floor_us = n * k * 2 / bw * 1e6

        def blas(i, x=x, ws=ws, n_out=n_out, gated=gated):
            h = F.linear(x, ws[i % len(ws)])
            return F.silu(h[:, :n_out]) * h[:, n_out:] if gated else h

        cublas[name] = graph_time_us(blas, len(ws))
        print(f"{name:14s} cublas {cublas[name]:7.2f} us (floor {floor_us:.2f})", flush=True)
        for cfg in configs(rows, n, k, gated):
            if time.monotonic() - START > BUDGET_S:
                break
            time_config(name, cfg, x, ws, y, ref, gated, floor_us, 1)
        mine = [r for r in rows_out if r["linear"] == name and r["rel_err"] < 2e-2]
        mine.sort(key=lambda r: r["us"])
        for r in mine[:2]:
            for cfg in around(SkinnyConfig(**r["config"]), gated):
                if time.monotonic() - START > BUDGET_S * 1.15:
                    break
                time_config(name, cfg, x, ws, y, ref, gated, floor_us, 2)
        print(f"{name}: best {best.get(name)}", flush=True)
        del ws
        torch.cuda.empty_cache()
        dump()

    # The layers' linears back to back, distinct weights, as a decode step reads them: cuBLAS with torch's
    # activation, against the best plans with PDL (gated gate_up).
    if not all(nm in best for nm in ("qkv", "o_proj", "gate_up_gated", "down")):
        return
    weights = [{nm: torch.randn(n, k, device="cuda", dtype=DTYPE) * 0.02 for nm, (n, k) in shapes.items()}
               for _ in range(layers)]  # fmt: skip
    xs = {nm: torch.randn(rows, k, device="cuda", dtype=DTYPE) for nm, (n, k) in shapes.items()}

    def run(plan: str) -> None:
        for layer in weights:
            for nm in shapes:
                if plan == "cublas":
                    h = F.linear(xs[nm], layer[nm])
                    if nm == "gate_up":
                        half = h.shape[1] // 2
                        F.silu(h[:, :half]) * h[:, half:]
                elif nm == "gate_up":
                    skinny_linear(xs[nm], layer[nm], best["gate_up_gated"][1], gated=True, use_pdl=True)
                else:
                    skinny_linear(xs[nm], layer[nm], best[nm][1], use_pdl=True)

    for _ in range(2):
        for plan in ("cublas", "triton"):
            chain.setdefault(plan, []).append(graph_time_us(lambda i, p=plan: run(p), 1))
    chain["floor_us"] = layers * sum(n * k * 2 for n, k in shapes.values()) / bw * 1e6
    print("chain", chain, flush=True)
    dump()


if __name__ == "__main__":
    main()
