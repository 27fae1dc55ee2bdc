"""Session 25: the norm producers (o_proj, down) at 64 rows without the split merge, by splitting the rows.

Session 25's chain profile charges the 1B's and Qwen3-0.6B's o_proj and down, which split their input in
two and merge the halves (an atomic ticket, then the last split rereads every float32 partial from L2),
1.5-2 us more over their bytes than qkv and gate_up, which do not. Their plans split the input to reach
~128 programs; the sweeps behind them (sessions 9, 11, 14) kept all 64 rows in one tile. Two programs of
32 rows each over the same features reach the same count with no merge, reading each weight tile twice,
the second time from L2 (the grid puts them side by side). This times the producers' plans against
row-split ones, in the form a step runs them (``skinny_linear_add_norm``), CUDA-graph replays over
rotating weight copies, and checks each plan's outputs against the current plan's.
Usage: ``session25_producer_rows.py OUT.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import config_dict, graph_time_us, weights_for

from pagedllm.bench.kernels import copy_bandwidth
from pagedllm.model.layers.skinny_linear import SkinnyConfig, skinny_config, skinny_linear_add_norm

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "200"))
DTYPE = torch.bfloat16
ROWS = 64
# model: {producer: (n, k)}
PRODUCERS = {
    "llama-3.2-1b": {"o_proj": (2048, 2048), "down": (2048, 8192)},
    "qwen3-0.6b": {"o_proj": (1024, 2048), "down": (1024, 3072)},
}


def candidates(n: int, k: int, plan: SkinnyConfig) -> list[SkinnyConfig]:
    """The plan, then row-split plans over the whole input: 32 rows (as ``session25_decode.py`` runs them),
    shallower, narrower or wider, in shorter input tiles, and 16 rows."""
    other_bn = 16 if plan.block_n == 32 else 32
    out = [
        plan,
        SkinnyConfig(32, plan.block_n, 256, 1, 4, 4),
        SkinnyConfig(32, plan.block_n, 256, 1, 4, 3),
        SkinnyConfig(32, other_bn, 256, 1, 4, 4),
        SkinnyConfig(32, plan.block_n, 128, 1, 4, 4),
        SkinnyConfig(16, plan.block_n, 256, 1, 4, 4),
    ]
    return [c for c in dict.fromkeys(out) if not k % (c.split_k * c.block_k)]


def sweep(model: str, name: str, n: int, k: int, bw: float, rows_out: list[dict]) -> None:
    ws = weights_for(n, k)
    x = torch.randn(ROWS, k, device="cuda", dtype=DTYPE)
    residual = torch.randn(ROWS, n, device="cuda", dtype=DTYPE)
    norm_w = torch.rand(n, device="cuda", dtype=DTYPE) + 0.5
    plan = skinny_config(n, k)
    floor_us = n * k * 2 / bw * 1e6

    def outputs(cfg: SkinnyConfig) -> list[torch.Tensor]:
        r = residual.clone()
        pending = skinny_linear_add_norm(x, ws[0], cfg, r, norm_w, 1e-6)
        # The rows' sums of squares summed over the tiles: comparable whatever the tiling.
        return [pending.weighted.float(), r.float(), pending.sumsq_parts.sum(0)]

    def call(i: int, cfg: SkinnyConfig, scratch: torch.Tensor) -> object:
        return skinny_linear_add_norm(x, ws[i % len(ws)], cfg, scratch, norm_w, 1e-6)

    want = outputs(plan)
    for cfg in candidates(n, k, plan):
        if time.monotonic() - START > BUDGET_S:
            break
        try:
            got = outputs(cfg)
            err = max(((g - w).abs().max() / w.abs().max()).item() for g, w in zip(got, want, strict=True))
            scratch = residual.clone()  # grows call by call: timing only
            us = graph_time_us(lambda i, c=cfg, s=scratch: call(i, c, s), len(ws))
        except Exception as exc:  # a plan the launch refuses
            print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
            continue
        rows_out.append({"model": model, "linear": name, "config": config_dict(cfg), "us": us,
                         "floor_us": floor_us, "rel_err_vs_plan": err, "current": cfg == plan})  # fmt: skip
        print(f"{model} {name} {'*' if cfg == plan else ' '} {cfg} {us:.2f} us err {err:.1e}", flush=True)


def main() -> None:
    bw = copy_bandwidth(torch.device("cuda"))
    rows_out: list[dict] = []
    for model, producers in PRODUCERS.items():
        for name, (n, k) in producers.items():
            sweep(model, name, n, k, bw, rows_out)
            torch.cuda.empty_cache()
    result = {"device": torch.cuda.get_device_name(), "copy_bytes_per_s": bw, "rows": rows_out}
    with open(sys.argv[1], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
