"""Session 27, call 5: why is the 1B's 64-row decode step 6% slower when its rotated qkv launch stores K/V?

Times the rotated qkv launch of the Llama-3.2-1B and the 3.1-8B at 64 rows as CUDA-graph replays over
rotating weight copies, PDL on as in a step: alone, followed by attention's K/V write kernel, and storing
K/V itself, each by TMA and by pointers; then prints every compiled variant's registers, spills and
shared memory. ``python3 session27_store_kv_probe.py OUT.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import graph_time_us, weights_for

from pagedllm.attention.triton.kv_write import write_kv_cache
from pagedllm.model.layers import skinny_linear as sk
from pagedllm.worker.kv_cache import new_kv_cache

DTYPE = torch.bfloat16
MODELS = {"llama-3.2-1b": (3072, 2048, 64, 32, 8), "llama-3.1-8b": (6144, 4096, 128, 32, 8)}


def time_model(name: str, rows: int, times: dict) -> None:
    n, k, head_dim, q_heads, kv_heads = MODELS[name]
    ws = weights_for(n, k)
    x = torch.randn(rows, k, device="cuda", dtype=DTYPE)
    y = torch.empty(rows, n, device="cuda", dtype=DTYPE)
    positions = torch.arange(500, 500 + rows, device="cuda", dtype=torch.int64)
    cos = torch.rand(4096, head_dim // 2, device="cuda")
    sin = torch.rand(4096, head_dim // 2, device="cuda")
    q_size, kv_size = q_heads * head_dim, kv_heads * head_dim
    cache = new_kv_cache(8192, 16, kv_heads, head_dim, DTYPE, "cuda")
    slots = torch.randperm(8192 * 16, device="cuda")[:rows]
    plan = sk.rotary_skinny_config(n, k, head_dim)
    assert plan is not None
    plain = sk.SkinnyRope(positions, cos, sin, head_dim, q_size + kv_size)
    storing = sk.SkinnyRope(positions, cos, sin, head_dim, q_size + kv_size, cache, slots)

    def launch(cfg: sk.SkinnyConfig, rope: sk.SkinnyRope, write_after: bool):
        def call(i: int) -> None:
            out = sk.skinny_linear(x, ws[i % len(ws)], cfg, out=y, rope=rope)
            if write_after:  # attention's K/V write kernel
                k_heads = out[:, q_size : q_size + kv_size].view(rows, kv_heads, head_dim)
                write_kv_cache(
                    k_heads, out[:, q_size + kv_size :].view(rows, kv_heads, head_dim), cache, slots
                )

        return call

    for tma in (True, False):
        cfg = dataclasses.replace(plan, tma=tma)
        for label, fn in (
            ("alone", launch(cfg, plain, False)),
            ("then_kv_write", launch(cfg, plain, True)),
            ("stores_kv", launch(cfg, storing, False)),
        ):
            us = graph_time_us(fn, len(ws))
            times[f"{name} tma={tma} {label}"] = us
            print(f"{name} tma={tma} {label}: {us:.2f} us", flush=True)


def main() -> None:
    rows = 64
    result: dict = {"device": torch.cuda.get_device_name(), "rows": rows, "times_us": {}, "compiled": []}
    for name in MODELS:
        time_model(name, rows, result["times_us"])
        torch.cuda.empty_cache()
    with open(sys.argv[1], "w") as f:
        json.dump(result, f, indent=1)
    for device_cache in sk._skinny_linear_kernel.device_caches.values():
        for compiled in device_cache[0].values():
            consts = {
                str(c): str(v) for c, v in getattr(getattr(compiled, "src", None), "constants", {}).items()
            }
            flags = {
                c: v for c, v in consts.items() if any(t in c for t in ("STORE", "TMA", "BLOCK_N", "ROPE"))
            }
            entry = {
                "n_regs": compiled.n_regs,
                "n_spills": compiled.n_spills,
                "shared": compiled.metadata.shared,
            }
            result["compiled"].append({**entry, "constants": consts})
            print(f"{entry} {flags}", flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
