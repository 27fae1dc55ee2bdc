"""Session 14: are the decode linears' plans also the fastest in the forms a decode step runs them?

``skinny_config`` was swept on plain products. In a step of at most 64 rows, o_proj and down produce a
handed-over norm (``skinny_linear_add_norm``: the residual add, the norm weight and the per-tile sums of
squares in the epilogue; a split input's last split does all of it), and qkv (rotated for the Llama
family) and gate_up (gated) consume one (each row scaled by ``1 / rms`` at the end). This times every
form's current plan against neighbouring plans at 64 rows for Llama-3.2-1B and Qwen3-0.6B, CUDA-graph
replays over rotating weight copies. Writes ``$OUT/handover-sweep.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import config_dict, graph_time_us, weights_for

from pagedllm.bench.kernels import copy_bandwidth
from pagedllm.model.layers.pending_norm import PendingNorm
from pagedllm.model.layers.rotary import RotaryEmbedding
from pagedllm.model.layers.skinny_linear import (
    SkinnyConfig,
    SkinnyRope,
    gated_skinny_config,
    rotary_skinny_config,
    skinny_config,
    skinny_linear,
    skinny_linear_add_norm,
)

START = time.monotonic()
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "300"))
DTYPE = torch.bfloat16
ROWS = 64
# model: (hidden, q_size, kv_size, intermediate, head_dim, rotated qkv)
MODELS = {
    "llama-3.2-1b": (2048, 2048, 512, 8192, 64, True),
    "qwen3-0.6b": (1024, 2048, 1024, 3072, 128, False),
}


def candidates(
    n: int, k: int, plan: SkinnyConfig, *, splits: tuple[int, ...], widths: tuple[int, ...]
) -> list:
    out = [plan]
    for bn, bk, sk, stages in itertools.product(widths, (128, 256), splits, (3, 4)):
        if k % (sk * bk) or stages * (64 + bn) * bk * 2 > 200_000 or stages > k // (sk * bk):
            continue
        if -(-n // bn) * sk < 32:
            continue
        out.append(SkinnyConfig(64, bn, bk, sk, 8 if bn >= 128 else 4, stages))
    return list(dict.fromkeys(out))


def main() -> None:
    bw = copy_bandwidth(torch.device("cuda"))
    rows_out: list[dict] = []

    def dump() -> None:
        with open(os.path.join(os.environ.get("OUT", "."), "handover-sweep.json"), "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "copy_bytes_per_s": bw, "note": sys.argv[1:],
                       "rows": rows_out}, f, indent=1)  # fmt: skip

    for model, (hidden, q_size, kv_size, inter, head_dim, rotated) in MODELS.items():
        norm_w = torch.rand(hidden, device="cuda", dtype=DTYPE) + 0.5
        h = torch.randn(ROWS, hidden, device="cuda", dtype=DTYPE)
        pending = PendingNorm(
            (h.float() * norm_w.float()).to(DTYPE), torch.rand(4, ROWS, device="cuda") * 100, 1e-6
        )
        rope_cache = RotaryEmbedding(head_dim, 4096, 10000.0).to("cuda")
        positions = torch.randint(0, 4096, (ROWS,), device="cuda")
        qkv_n = q_size + 2 * kv_size
        rope = SkinnyRope(positions, rope_cache.cos_cache, rope_cache.sin_cache, head_dim, q_size + kv_size)
        forms = []
        for name, n, k in (("o_proj", hidden, q_size), ("down", hidden, inter)):
            x = torch.randn(ROWS, k, device="cuda", dtype=DTYPE)
            residual = torch.randn(ROWS, n, device="cuda", dtype=DTYPE)

            def producer(w, c, x=x, residual=residual, norm_w=norm_w):
                return skinny_linear_add_norm(x, w, c, residual, norm_w, 1e-6)

            plan = skinny_config(n, k)
            forms.append((name + " (produces the norm)", n, k, plan, producer,
                          candidates(n, k, plan, splits=(1, 2, 4), widths=(16, 32, 64))))  # fmt: skip
        if rotated:
            plan = rotary_skinny_config(qkv_n, hidden, head_dim)
            cands = [c for c in candidates(qkv_n, hidden, plan, splits=(1,), widths=(16, 32, 64))
                     if (head_dim // 2) % (c.block_n // 2) == 0]  # fmt: skip

            def consumer_qkv(w, c, pending=pending, rope=rope):
                return skinny_linear(pending, w, c, rope=rope)
        else:
            plan = skinny_config(qkv_n, hidden)
            cands = candidates(qkv_n, hidden, plan, splits=(1, 2), widths=(16, 32, 64))

            def consumer_qkv(w, c, pending=pending):
                return skinny_linear(pending, w, c)

        forms.append(("qkv (takes the norm)", qkv_n, hidden, plan, consumer_qkv, cands))
        plan = gated_skinny_config(2 * inter, hidden)
        launches = candidates(2 * inter, hidden, plan, splits=(1,), widths=(32, 64, 128, 256))
        gated = [SkinnyConfig(64, c.block_n // 2, c.block_k, 1, c.num_warps, c.num_stages) for c in launches]

        def consumer_gate_up(w, c, pending=pending):
            return skinny_linear(pending, w, c, gated=True)

        forms.append(("gate_up (gated, takes the norm)", 2 * inter, hidden, plan, consumer_gate_up,
                      list(dict.fromkeys([plan, *gated]))))  # fmt: skip

        for name, n, k, plan, fn, cands in forms:
            ws = weights_for(n, k)
            floor_us = n * k * 2 / bw * 1e6
            best = None
            for cfg in cands:
                if time.monotonic() - START > BUDGET_S:
                    break
                try:
                    fn(ws[0], cfg)
                    us = graph_time_us(lambda i, c=cfg, ws=ws, fn=fn: fn(ws[i % len(ws)], c), len(ws))
                except Exception as exc:  # a plan the launch refuses
                    print(f"  {cfg}: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
                    continue
                rows_out.append({"model": model, "linear": name, "config": config_dict(cfg), "us": us,
                                 "floor_us": floor_us, "current": cfg == plan})  # fmt: skip
                print(f"{model} {name} {'*' if cfg == plan else ' '} {cfg} {us:.2f} us", flush=True)
                if best is None or us < best[0]:
                    best = (us, cfg)
            print(f"== {model} {name}: floor {floor_us:.2f}, best {best}", flush=True)
            del ws
            torch.cuda.empty_cache()
            dump()


if __name__ == "__main__":
    main()
