"""Issue 5 follow-up sweep on one GPU: prefill tile variants on the table's shapes against SDPA (and
against a saved copy of the previous kernel, if ``--old`` names one), and decode split counts for the
Qwen2.5-0.5B layout in CUDA-graph replays. Prints one line per measurement; JSON to ``--out``.

    python3 benchmarks/gpu/issue5_sweep.py --out $OUT/sweep.json [--old path/to/old_prefill.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pagedllm.attention.triton.prefill import PrefillLaunch, paged_prefill_attention
from pagedllm.bench.kernels import HEAD_LAYOUTS, bench_decode, copy_bandwidth, make_set, rel_error, time_ms

PREFILL_SHAPES = {
    "llama": [(1, 4096), (16, 4096), (64, 1024), (1, 16384)],
    "qwen": [(1, 4096), (16, 4096), (64, 1024)],
}
VARIANTS = {
    "llama": [
        (128, 128, 8, 3),
        (128, 64, 8, 3),
        (128, 128, 8, 2),
        (64, 64, 4, 3),
        (64, 128, 4, 2),
        (64, 64, 4, 4),
        (128, 64, 4, 3),
    ],
    "qwen": [
        (128, 64, 8, 2),
        (128, 64, 4, 3),
        (128, 128, 8, 2),
        (64, 64, 4, 3),
        (128, 64, 8, 3),
        (64, 128, 4, 2),
        (256, 64, 8, 2),
    ],
}


def prefill_rows(device: torch.device, old: Any) -> list[dict[str, Any]]:
    rows = []
    for heads, shapes in PREFILL_SHAPES.items():
        num_heads, _, head_dim = HEAD_LAYOUTS[heads]
        for batch, context in shapes:
            s = make_set(
                batch, context, context, 16, HEAD_LAYOUTS[heads], torch.bfloat16, device, shuffle=False
            )
            md = s.metadata
            scale = head_dim**-0.5
            out = torch.full_like(s.query, float("nan"))
            q4 = s.query.view(batch, context, num_heads, head_dim).transpose(1, 2)

            def sdpa(q4: torch.Tensor = q4, s: Any = s, scale: float = scale) -> torch.Tensor:
                return F.scaled_dot_product_attention(
                    q4, s.k_contig, s.v_contig, is_causal=True, scale=scale, enable_gqa=True
                )

            ref = sdpa()
            sdpa_ms = time_ms(sdpa, device)
            flops = 4 * batch * num_heads * head_dim * context * (context + 1) / 2
            cands: list[tuple[str, Any]] = [
                (f"new {v}", (paged_prefill_attention, v)) for v in VARIANTS[heads]
            ]
            if old is not None:
                cands.insert(0, ("old default", (old.paged_prefill_attention, None)))
            for name, (fn, v) in cands:
                launch = PrefillLaunch() if v is None else PrefillLaunch(*v)

                def ours(
                    fn: Any = fn,
                    launch: PrefillLaunch = launch,
                    out: torch.Tensor = out,
                    s: Any = s,
                    md: Any = md,
                    scale: float = scale,
                ) -> None:
                    fn(
                        out,
                        s.query,
                        s.cache,
                        md.block_tables,
                        md.seq_lens,
                        md.query_start_loc,
                        scale,
                        launch=launch,
                    )

                try:
                    out.fill_(float("nan"))
                    ours()
                    err = rel_error(out.view(batch, context, num_heads, head_dim).transpose(1, 2), ref)
                    ms = time_ms(ours, device)
                except Exception as e:
                    print(f"prefill {heads} {batch}x{context} {name}: ERROR {e!r}"[:300], flush=True)
                    continue
                row = {
                    "kernel": "prefill",
                    "heads": heads,
                    "batch": batch,
                    "context": context,
                    "variant": name,
                    "ms": ms,
                    "sdpa_ms": sdpa_ms,
                    "ratio": ms / sdpa_ms,
                    "tflops": flops / ms / 1e9,
                    "err": err,
                }
                rows.append(row)
                print(
                    f"prefill {heads:5} {batch:>2}x{context:<5} {name:<24} ms={ms:.4f} sdpa={sdpa_ms:.4f} "
                    f"ratio={ms / sdpa_ms:.3f} tflops={flops / ms / 1e9:.0f} err={err:.1e}",
                    flush=True,
                )
            torch.cuda.empty_cache()
    return rows


def decode_rows(device: torch.device, copy_bw: float) -> list[dict[str, Any]]:
    rows = []
    cases = [
        ("qwen", 64, 4096, (3, 4, 5, 6)),
        ("qwen", 16, 4096, (9, 13)),
        ("qwen", 16, 16384, (9, 13)),
        ("qwen", 256, 4096, (1, 2)),
        ("llama", 16, 4096, (3, 4)),
        ("qwen", 64, 4096, (3, 4, 5, 6)),
    ]
    for heads, batch, context, splits in cases:
        for n in splits:
            r = bench_decode(
                heads, batch, context, 16, "bf16", device, copy_bw, num_splits=n, with_sdpa=False
            )
            rows.append(r)
            print(
                f"decode {heads:5} {batch:>3}x{context:<5} splits={n:<2} ms={r['ms']:.4f} "
                f"ms_g={r['ms_graph']:.4f} "
                f"frac_g={r['bandwidth_fraction_graph']:.3f}",
                flush=True,
            )
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--old", type=Path, default=None)
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--explore", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda")
    old = None
    if args.old is not None and args.old.exists():
        spec = importlib.util.spec_from_file_location("old_prefill", args.old)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_prefill"] = old
        spec.loader.exec_module(old)
    t0 = time.time()
    copy_bw = copy_bandwidth(device)
    print(f"copy bandwidth {copy_bw / 1e12:.2f} TB/s", flush=True)
    if args.explore:
        rows = explore(device, copy_bw)
        args.out.write_text(json.dumps({"copy_bandwidth": copy_bw, "rows": rows}, indent=1))
        return
    rows = prefill_rows(device, old)
    print(f"prefill done in {time.time() - t0:.0f} s", flush=True)
    if not args.skip_decode:
        rows += decode_rows(device, copy_bw)
    args.out.write_text(json.dumps({"copy_bandwidth": copy_bw, "rows": rows}, indent=1))
    print(f"done in {time.time() - t0:.0f} s", flush=True)


def explore(device: torch.device, copy_bw: float) -> list[dict[str, Any]]:
    """What paging costs the prefill kernel (the same cache seen as one block per sequence: one table
    load per tile, contiguous rows), and decode launch variants for the Qwen layout at 64 x 4k."""
    from pagedllm.attention.triton.decode import DecodeLaunch

    rows: list[dict[str, Any]] = []
    cases = [("llama", 1, 4096, (128, 128, 8, 2)), ("llama", 16, 4096, (128, 128, 8, 2)),
             ("llama", 64, 1024, (128, 128, 8, 2)), ("llama", 64, 1024, (64, 64, 4, 3)),
             ("qwen", 64, 1024, (128, 64, 8, 2)), ("qwen", 16, 4096, (128, 64, 8, 2))]  # fmt: skip
    for heads, batch, context, v in cases:
        _, kvh, head_dim = HEAD_LAYOUTS[heads]
        s = make_set(batch, context, context, 16, HEAD_LAYOUTS[heads], torch.bfloat16, device, shuffle=False)
        md = s.metadata
        out = torch.full_like(s.query, float("nan"))
        whole = s.cache.view(2, batch, context, kvh, head_dim)
        table1 = torch.arange(batch, dtype=torch.int32, device=device)[:, None].contiguous()
        for name, cache, table in (
            ("paged bs16", s.cache, md.block_tables),
            ("one block/seq", whole, table1),
        ):

            def ours(
                cache: torch.Tensor = cache,
                table: torch.Tensor = table,
                v: Any = v,
                out: torch.Tensor = out,
                s: Any = s,
                md: Any = md,
                scale: float = head_dim**-0.5,
            ) -> None:
                paged_prefill_attention(out, s.query, cache, table, md.seq_lens, md.query_start_loc, scale,
                                        launch=PrefillLaunch(*v))  # fmt: skip

            ms = time_ms(ours, device)
            rows.append({"kernel": "explore-prefill", "heads": heads, "batch": batch, "context": context,
                         "variant": f"{name} {v}", "ms": ms})  # fmt: skip
            print(f"explore prefill {heads:5} {batch:>2}x{context:<5} {name:<14} {v} ms={ms:.4f}", flush=True)
        torch.cuda.empty_cache()
    for splits in (3, 4):
        for n, w, st in (
            (128, 4, 3),
            (128, 4, 2),
            (128, 8, 2),
            (256, 4, 2),
            (256, 8, 2),
            (256, 8, 3),
            (64, 4, 2),
        ):
            r = bench_decode("qwen", 64, 4096, 16, "bf16", device, copy_bw, num_splits=splits,
                             launch=DecodeLaunch(n, w, st), with_sdpa=False)  # fmt: skip
            rows.append(r)
            print(f"explore decode qwen 64x4096 splits={splits} {(n, w, st)} ms_g={r['ms_graph']:.4f} "
                  f"frac_g={r['bandwidth_fraction_graph']:.3f}", flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
