"""Session 27: can Qwen3's qkv projection end in its q-k norm, rotary and K/V store?

At 64 rows a Qwen3-0.6B layer runs its qkv projection (the skinny linear, 128 programs of 32 features)
and then ``qk_norm_rope`` (one program per token: each head's RMSNorm, rotary, the K/V store), a launch
the session-25 profile charges 2.1 us a layer. An epilogue can normalize a head only where one program
holds all of it: tiles of a whole head (128 features, as two 64-feature halves), 32 programs over the
whole input. This times, as CUDA-graph replays over rotating weight copies with PDL on as in a step:

- ``engine``: the plain qkv plan, then ``qk_norm_rope_inplace`` with its K/V store (what a step runs);
- ``rotated_plan``: the rotated launch of the engine's plan (rope, no norm: the Llama path);
- ``whole_head``: rotated launches whose tiles hold whole heads, over tile shapes and depths.

``python3 session27_whole_head_qkv.py OUT.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import config_dict, graph_time_us, weights_for

from pagedllm.attention.layer import KVStore
from pagedllm.attention.triton.kv_write import write_kv_cache
from pagedllm.bench.kernels import copy_bandwidth
from pagedllm.model.layers import qk_norm_rope
from pagedllm.model.layers.skinny_linear import (
    SkinnyConfig,
    SkinnyRope,
    rotary_skinny_config,
    skinny_config,
    skinny_linear,
)

DTYPE = torch.bfloat16
SMEM = 220 * 1024
MODELS = {  # name: (N, K, head_dim, q heads, kv heads)
    "qwen3-0.6b": (4096, 1024, 128, 16, 8),
    "llama-3.2-1b": (3072, 2048, 64, 32, 8),
}


def sweep_model(name: str, bw: float, rows: int = 64) -> dict:
    n, k, head_dim, q_heads, kv_heads = MODELS[name]
    ws = weights_for(n, k)
    x = torch.randn(rows, k, device="cuda", dtype=DTYPE)
    y = torch.empty(rows, n, device="cuda", dtype=DTYPE)
    positions = torch.arange(500, 500 + rows, device="cuda", dtype=torch.int64)
    inv = 1.0 / (1e6 ** (torch.arange(0, head_dim, 2, device="cuda", dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(4096, device="cuda", dtype=torch.float32), inv)
    cos, sin = freqs.cos().contiguous(), freqs.sin().contiguous()
    q_size, kv_size = q_heads * head_dim, kv_heads * head_dim
    rope = SkinnyRope(positions, cos, sin, head_dim, q_size + kv_size)
    cache = torch.zeros(2, 4096, 16, kv_heads, head_dim, device="cuda", dtype=DTYPE)
    slots = torch.arange(rows, device="cuda", dtype=torch.int64) * 37
    norm_w = torch.ones(head_dim, device="cuda", dtype=DTYPE)
    entry: dict = {"floor_us": n * k * 2 / bw * 1e6, "rows": []}
    print(f"== {name}: floor {entry['floor_us']:.2f} us", flush=True)

    def record(stage: str, cfg: SkinnyConfig, fn) -> None:
        try:
            us = graph_time_us(fn, len(ws))
        except Exception as exc:  # a tile shape the compiler refuses
            print(f"  {stage} {cfg}: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
            return
        entry["rows"].append({"stage": stage, "config": config_dict(cfg), "us": us})
        c = cfg
        shape = f"{c.block_m}x{c.block_n}x{c.block_k} w{c.num_warps} st{c.num_stages} tma={c.tma}"
        print(f"  {stage} {shape}: {us:.2f} us", flush=True)

    plain = skinny_config(n, k)
    assert plain is not None

    def engine_qwen3(i: int) -> None:
        out = skinny_linear(x, ws[i % len(ws)], plain, out=y)
        store = KVStore(out[:, q_size + kv_size :], cache, slots)
        qk_norm_rope.qk_norm_rope_inplace(out[:, : q_size + kv_size], positions, cos, sin, norm_w, norm_w,
                                          1e-6, head_dim, q_heads, kv_store=store)  # fmt: skip

    def linear_only(i: int) -> None:
        skinny_linear(x, ws[i % len(ws)], plain, out=y)

    def rotated(cfg: SkinnyConfig, write_kv: bool = False):
        def call(i: int) -> None:
            out = skinny_linear(x, ws[i % len(ws)], cfg, out=y, rope=rope)
            if write_kv:  # the 1B's step: the K/V write kernel after the rotated qkv
                k_heads = out[:, q_size : q_size + kv_size].view(rows, kv_heads, head_dim)
                v_heads = out[:, q_size + kv_size :].view(rows, kv_heads, head_dim)
                write_kv_cache(k_heads, v_heads, cache, slots)

        return call

    if name.startswith("qwen3"):
        record("engine", plain, engine_qwen3)
    record("plain_linear_only", plain, linear_only)
    plan = rotary_skinny_config(n, k, head_dim)
    if plan is not None:
        record("rotated_plan", plan, rotated(plan))
        if not name.startswith("qwen3"):
            record("rotated_plan_then_kv_write", plan, rotated(plan, write_kv=True))
    for bm, bk, stages, warps in itertools.product((64, 32), (128, 256), (3, 4, 5), (4, 8)):
        cfg = SkinnyConfig(bm, head_dim, bk, 1, warps, stages, tma=True)
        if stages * (bm + head_dim) * bk * 2 <= SMEM and k // bk >= 2:
            record("whole_head", cfg, rotated(cfg))
    heads = [r for r in entry["rows"] if r["stage"] == "whole_head"]
    if heads:
        best = min(heads, key=lambda r: r["us"])
        print(f"  best whole-head: {best['us']:.2f} us {best['config']}", flush=True)
    return entry


def main() -> None:
    path = sys.argv[1]
    bw = copy_bandwidth(torch.device("cuda"))
    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "copy_bytes_per_s": bw, "rows": 64, "models": {}}  # fmt: skip
    for name in MODELS:
        result["models"][name] = sweep_model(name, bw)
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
