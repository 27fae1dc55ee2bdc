"""Session 6: prefill kernel variants against SDPA on the same tokens, interleaved repeats.

Candidates: the previous kernel (a saved copy, every key through the cache), the new kernel with every
key through the cache, the new kernel reading the step's new K/V by pointers and by TMA descriptors
(optionally with Triton's warp specialization and other tiles). The step's K/V are views into a fused
QKV tensor, as the models produce them, holding the same values as the cache.

    python3 benchmarks/gpu/session6_prefill.py --old old_prefill.py --repeats 3 --out results.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from typing import Any

import torch
import torch.nn.functional as F

from pagedllm.attention.triton.prefill import PrefillLaunch, paged_prefill_attention
from pagedllm.bench.kernels import HEAD_LAYOUTS, make_set, rel_error, time_ms

SHAPES = [
    ("llama", 1, 1024), ("llama", 1, 4096), ("llama", 16, 1024), ("llama", 16, 4096), ("llama", 64, 1024),
    ("llama", 1, 16384), ("qwen", 1, 1024), ("qwen", 1, 4096), ("qwen", 16, 1024), ("qwen", 16, 4096),
    ("qwen", 64, 1024),
]  # fmt: skip


def load_old(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("old_prefill", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_prefill"] = module
    spec.loader.exec_module(module)
    return module


def candidates(heads: str, which: str) -> list[tuple[str, str, PrefillLaunch]]:
    """(name, source of new K/V: old | cache | step, launch). Set "a": the first sweep; "b": around its
    winners (TMA at three stages), pointers at three stages, deeper pipelines."""
    if which == "a":
        cands = [("old", "old", PrefillLaunch()), ("cache", "cache", PrefillLaunch())]
        cands += [
            ("step-ptr", "step", PrefillLaunch(tma=False)),
            ("step-tma", "step", PrefillLaunch(tma=True)),
        ]
        cands += [("step-tma-ws", "step", PrefillLaunch(tma=True, warp_specialize=True))]
        if heads == "llama":
            tiles = [(128, 128, 8, 3), (128, 64, 8, 3), (128, 64, 4, 3), (64, 128, 4, 2)]
        else:
            tiles = [(128, 64, 8, 3), (128, 128, 8, 2), (128, 64, 4, 3), (128, 32, 4, 3)]
        for m, n, w, s in tiles:
            launch = PrefillLaunch(block_m=m, block_n=n, num_warps=w, num_stages=s, tma=True)
            cands.append((f"step-tma {m},{n},{w},{s}", "step", launch))
        return cands
    if which == "c":  # the final A/B: the previous kernel against the new defaults, and two left-overs
        cands = [("old", "old", PrefillLaunch()), ("cache", "cache", PrefillLaunch())]
        cands += [("default", "step", PrefillLaunch()), ("default-ptr", "step", PrefillLaunch(tma=False))]
        cands += [("default-ws", "step", PrefillLaunch(warp_specialize=True))]
        cands += [
            ("step-tma 64,64,4,3", "step", PrefillLaunch(block_m=64, block_n=64, num_warps=4, num_stages=3))
        ]
        return cands
    if which == "d":  # pointers against TMA at 64-row tiles (two programs per SM), head dim 128 mostly
        cands = [("old", "old", PrefillLaunch())]
        if heads == "llama":
            ptr = [(64, 64, 4, 3), (64, 64, 4, 4), (64, 64, 4, 2), (64, 32, 4, 3), (128, 64, 8, 3)]
            tma = [(64, 64, 4, 3), (64, 64, 4, 4)]
        else:
            ptr = [(128, 64, 8, 3), (64, 64, 4, 3), (128, 64, 8, 4)]
            tma = [(128, 64, 8, 3)]
        for tiles, tma_on in ((ptr, False), (tma, True)):
            for m, n, w, s in tiles:
                launch = PrefillLaunch(block_m=m, block_n=n, num_warps=w, num_stages=s, tma=tma_on)
                cands.append((f"step-{'tma' if tma_on else 'ptr'} {m},{n},{w},{s}", "step", launch))
        return cands
    cands = [("old", "old", PrefillLaunch())]
    if heads == "llama":
        ptr = [(128, 128, 8, 3), (128, 64, 8, 3)]
        tma = [(128, 128, 8, 3), (128, 64, 8, 3), (128, 128, 8, 4), (128, 64, 8, 4), (128, 64, 8, 5)]
        ws = [(128, 128, 8, 3), (128, 64, 8, 3)]
    else:
        ptr = [(128, 64, 8, 3)]
        tma = [
            (128, 64, 8, 3),
            (128, 64, 8, 4),
            (128, 64, 4, 4),
            (128, 128, 8, 3),
            (64, 64, 4, 3),
            (128, 64, 8, 5),
        ]
        ws = [(128, 64, 8, 3)]
    for tiles, tma_on, ws_on in ((ptr, False, False), (tma, True, False), (ws, True, True)):
        for m, n, w, s in tiles:
            launch = PrefillLaunch(
                block_m=m, block_n=n, num_warps=w, num_stages=s, tma=tma_on, warp_specialize=ws_on
            )
            kind = "step-tma-ws" if ws_on else "step-tma" if tma_on else "step-ptr"
            cands.append((f"{kind} {m},{n},{w},{s}", "step", launch))
    return cands


def host_launch_us(heads: str, old: Any) -> dict[str, float]:
    """Host microseconds per launch (no synchronisation in between) of a 1 x 1k prefill, pointers vs
    TMA descriptors: what a small prefill costs the CPU, hidden or not behind the GPU."""
    import time

    device = torch.device("cuda")
    num_heads, num_kv_heads, head_dim = HEAD_LAYOUTS[heads]
    s = make_set(1, 1024, 1024, 16, HEAD_LAYOUTS[heads], torch.bfloat16, device, shuffle=False)
    md = s.metadata
    qkv = torch.randn(1024, num_heads + 2 * num_kv_heads, head_dim, dtype=torch.bfloat16, device=device)
    query, key, value = qkv.split([num_heads, num_kv_heads, num_kv_heads], dim=1)
    out = torch.empty_like(query)
    common = (out, query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, head_dim**-0.5)
    result = {}
    for name, fn in (
        ("old", lambda: old.paged_prefill_attention(*common)),
        (
            "step-ptr",
            lambda: paged_prefill_attention(*common, key=key, value=value, launch=PrefillLaunch(tma=False)),
        ),
        (
            "step-tma",
            lambda: paged_prefill_attention(*common, key=key, value=value, launch=PrefillLaunch(tma=True)),
        ),
    ):
        fn()
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(200):
                fn()
            best = min(best, (time.perf_counter() - start) / 200 * 1e6)
            torch.cuda.synchronize()
        result[name] = best
        print(f"host launch {heads} 1x1k {name}: {best:.1f} us", flush=True)
    return result


def run_shape(
    heads: str, batch: int, context: int, old: Any, repeats: int, which: str
) -> list[dict[str, Any]]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    num_heads, num_kv_heads, head_dim = HEAD_LAYOUTS[heads]
    s = make_set(batch, context, context, 16, HEAD_LAYOUTS[heads], torch.bfloat16, device, shuffle=False)
    md = s.metadata
    scale = head_dim**-0.5
    num_tokens = batch * context
    # The step's K/V as the models give them: views into one fused QKV output, same values as the cache.
    qkv = torch.empty(num_tokens, num_heads + 2 * num_kv_heads, head_dim, dtype=torch.bfloat16, device=device)
    query, key, value = qkv.split([num_heads, num_kv_heads, num_kv_heads], dim=1)
    query.copy_(s.query)
    key.copy_(s.cache[0].reshape(num_tokens, num_kv_heads, head_dim))
    value.copy_(s.cache[1].reshape(num_tokens, num_kv_heads, head_dim))
    q4 = query.reshape(batch, context, num_heads, head_dim).transpose(1, 2)

    def sdpa() -> torch.Tensor:
        return F.scaled_dot_product_attention(
            q4, s.k_contig, s.v_contig, is_causal=True, scale=scale, enable_gqa=True
        )

    ref = sdpa()
    fns: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, source, launch in candidates(heads, which):
        out = torch.full_like(query, float("nan"))
        common = (out, query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, scale)
        if source == "old":
            fn = lambda c=common: old.paged_prefill_attention(*c)  # noqa: E731
        elif source == "cache":
            fn = lambda c=common, lc=launch: paged_prefill_attention(*c, launch=lc)  # noqa: E731
        else:
            fn = lambda c=common, lc=launch: paged_prefill_attention(*c, key=key, value=value, launch=lc)  # noqa: E731
        try:
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            err = rel_error(out.view(batch, context, num_heads, head_dim).transpose(1, 2), ref)
        except Exception as e:
            rows[name] = {"name": name, "error": f"{type(e).__name__}: {str(e)[:300]}"}
            print(f"{heads} {batch}x{context} {name}: FAILED {rows[name]['error']}", flush=True)
            continue
        fns[name] = fn
        rows[name] = {"name": name, "rel_error_vs_sdpa": err, "ms": []}
    fns["sdpa"] = sdpa
    rows["sdpa"] = {"name": "sdpa", "ms": []}
    for _ in range(repeats):  # interleaved: drift hits every candidate alike
        for name, fn in fns.items():
            rows[name]["ms"].append(time_ms(fn, device))
    sdpa_ms = statistics.median(rows["sdpa"]["ms"])
    flops = 4 * batch * num_heads * head_dim * context * (context + 1) / 2
    out_rows = []
    for name, row in rows.items():
        row.update(heads=heads, batch=batch, context=context)
        if row.get("ms"):
            med = statistics.median(row["ms"])
            row.update(ms_median=med, tflops=flops / (med * 1e-3) / 1e12, sdpa_ratio=med / sdpa_ms)
            print(
                f"{heads} {batch}x{context} {name:26s} {med:8.4f} ms  {row['tflops']:5.0f} TF/s  "
                f"x_sdpa {row['sdpa_ratio']:.3f}  err {row.get('rel_error_vs_sdpa', 0):.1e}  "
                f"each {' '.join(f'{x:.4f}' for x in row['ms'])}",
                flush=True,
            )
        out_rows.append(row)
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("--shapes", nargs="*", default=None, help="heads:batch:context")
    parser.add_argument("--set", default="a", choices=["a", "b", "c", "d"], dest="which")
    args = parser.parse_args()
    old = load_old(args.old)
    shapes = SHAPES
    if args.shapes:
        shapes = [(h, int(b), int(c)) for h, b, c in (x.split(":") for x in args.shapes)]
    rows: list[dict[str, Any]] = []
    for heads, batch, context in shapes:
        rows += run_shape(heads, batch, context, old, args.repeats, args.which)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    host = {h: host_launch_us(h, old) for h in HEAD_LAYOUTS} if torch.cuda.is_available() else {}
    result = {"device": name, "host_launch_us": host, "torch": torch.__version__, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
