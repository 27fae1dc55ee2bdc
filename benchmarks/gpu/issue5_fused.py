"""Issue 5, third session, on one GPU: the decode kernel's fused merge (the last split merges) against
the separate merge pass, over split counts and launch shapes, in CUDA-graph replays, interleaved and
repeated so that the run-to-run spread shows; and the prefill kernel's sequence search (chunked count
against the previous binary search, from a saved copy of the previous kernel) against SDPA. Prints one
line per measurement; JSON to ``--out``.

    python3 benchmarks/gpu/issue5_fused.py --out $OUT/fused.json [--old-prefill path/to/old_prefill.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pagedllm.attention.triton.decode import DecodeLaunch, choose_num_splits, paged_decode_attention
from pagedllm.attention.triton.prefill import PrefillLaunch, paged_prefill_attention
from pagedllm.bench.kernels import (
    HEAD_LAYOUTS,
    copy_bandwidth,
    graph_ms,
    kv_bytes,
    make_set,
    num_sets,
    rel_error,
    sdpa_decode,
    time_ms,
)


def decode_case(
    heads: str, batch: int, context: int, device: torch.device
) -> tuple[list[Any], list[torch.Tensor], float]:
    layout = HEAD_LAYOUTS[heads]
    sets = [
        make_set(batch, context, 1, 16, layout, torch.bfloat16, device)
        for _ in range(num_sets(batch, context, layout, torch.bfloat16))
    ]
    outs = [torch.full_like(s.query, float("nan")) for s in sets]
    return sets, outs, layout[2] ** -0.5


def decode_graph_ms(
    sets: list[Any], outs: list[torch.Tensor], scale: float, context: int, splits: int, launch: DecodeLaunch
) -> tuple[float, float]:
    """(median ms per launch in graph replays, max relative error against SDPA over the sets)."""

    def run(i: int) -> None:
        s, md = sets[i], sets[i].metadata
        paged_decode_attention(outs[i], s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc,
                               context, scale, num_splits=splits, launch=launch)  # fmt: skip

    errors = []
    for i, s in enumerate(sets):  # fresh poison, one eager run, checked
        outs[i].fill_(float("nan"))
        run(i)
        b, h, _ = s.query.shape
        errors.append(rel_error(outs[i].view(b, h, 1, -1), sdpa_decode(s)))
    ms = graph_ms([lambda i=i: run(i) for i in range(len(sets))], sets[0].query.device, reps=30)
    assert ms is not None
    return ms, max(errors)


def decode_rows(
    device: torch.device, copy_bw: float, repeats: int, verify: bool = False, kvblock: bool = False
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    # (heads, batch, context, [(splits, launch)...]); None splits: the default choice
    d = DecodeLaunch
    cases: list[tuple[str, int, int, list[tuple[int | None, DecodeLaunch]]]] = [
        ("qwen", 64, 4096, [
            (None, d(fused_merge=False)), (None, d(fused_merge=True)),
            (2, d(fused_merge=False)), (2, d(fused_merge=True)),
            (4, d(fused_merge=False)), (4, d(fused_merge=True)),
            (6, d(fused_merge=True)),
            (3, d(64, 4, 2, fused_merge=True)), (4, d(64, 4, 2, fused_merge=True)),
            (3, d(256, 8, 2, fused_merge=True)), (2, d(256, 8, 2, fused_merge=True)),
            (3, d(128, 4, 2, fused_merge=True)), (3, d(128, 8, 3, fused_merge=True)),
        ]),
        ("qwen", 64, 16384, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
        ("qwen", 64, 1024, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
        ("qwen", 16, 4096, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
        ("qwen", 16, 16384, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
        ("llama", 16, 4096, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
        ("llama", 16, 16384, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
        ("llama", 1, 16384, [(None, d(fused_merge=False)), (8, d(fused_merge=True)),
                             (16, d(fused_merge=True))]),
    ]  # fmt: skip
    if verify:  # candidate defaults on the table's shapes: head dim 64 at 2 or 3 stages; 16 splits fused
        cases = [(heads, b, c, [(None, d()), (None, d(128, 4, 2))]) for heads in ("qwen",)
                 for b in (16, 64, 256) for c in (1024, 4096, 16384)]  # fmt: skip
        cases += [("qwen", 1, 16384, [(None, d()), (None, d(128, 4, 2))]),
                  ("qwen", 1, 4096, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
                  ("llama", 1, 4096, [(None, d(fused_merge=False)), (None, d(fused_merge=True))]),
                  ("llama", 4, 4096, [(None, d(fused_merge=False)),
                                      (None, d(fused_merge=True))])]  # fmt: skip
    if kvblock:  # both KV heads of the Qwen layout in one program (a token's K row read in one piece)

        def k2(n: int, w: int, st: int) -> DecodeLaunch:
            return d(n, w, st, kv_heads_per_program=2)

        cases = [
            (
                "qwen",
                64,
                4096,
                [
                    (None, d()),
                    (None, d(fused_merge=False)),
                    (None, d(128, 4, 2)),
                    (None, k2(64, 4, 3)),
                    (4, k2(64, 4, 3)),
                    (6, k2(64, 4, 3)),
                    (None, k2(64, 4, 2)),
                    (None, k2(128, 4, 2)),
                    (None, k2(128, 8, 2)),
                    (None, k2(64, 8, 3)),
                    (None, k2(32, 4, 4)),
                ],
            )
        ]
        cases += [
            ("qwen", b, c, [(None, d()), (None, k2(64, 4, 3)), (None, k2(128, 4, 2))])
            for b, c in ((64, 16384), (256, 4096), (16, 4096), (64, 1024), (256, 1024), (16, 16384))
        ]
    for heads, batch, context, variants in cases:
        layout = HEAD_LAYOUTS[heads]
        sets, outs, scale = decode_case(heads, batch, context, device)
        kv_groups = layout[1]
        times: dict[int, list[float]] = {i: [] for i in range(len(variants))}
        errs: dict[int, float] = {}
        for _ in range(repeats):  # interleaved: drift hits every variant alike
            for i, (splits, launch) in enumerate(variants):
                default_splits = choose_num_splits(
                    batch, kv_groups // (launch.kv_heads_per_program or 1), context, sms
                )
                ms, err = decode_graph_ms(sets, outs, scale, context, splits or default_splits, launch)
                times[i].append(ms)
                errs[i] = max(err, errs.get(i, 0.0))
        num_bytes = kv_bytes(batch, context, layout, torch.bfloat16)
        for i, (splits, launch) in enumerate(variants):
            default_splits = choose_num_splits(
                batch, kv_groups // (launch.kv_heads_per_program or 1), context, sms
            )
            fracs = [num_bytes / (t * 1e-3) / copy_bw for t in times[i]]
            row = {
                "kernel": "decode",
                "heads": heads,
                "batch": batch,
                "context": context,
                "num_splits": splits or default_splits,
                "launch": [
                    launch.block_n,
                    launch.num_warps,
                    launch.num_stages,
                    launch.fused_merge,
                    launch.kv_heads_per_program,
                ],
                "ms_graph_each": times[i],
                "ms_graph_median": statistics.median(times[i]),
                "frac_graph_each": fracs,
                "frac_graph_median": statistics.median(fracs),
                "max_rel_error_vs_sdpa": errs[i],
            }
            rows.append(row)
            print(f"decode {heads:5} {batch:>3}x{context:<5} splits={row['num_splits']:<2} {row['launch']} "
                  f"frac_g med={row['frac_graph_median']:.3f} each={[round(f, 3) for f in fracs]} "
                  f"err={errs[i]:.1e}", flush=True)  # fmt: skip
        del sets, outs
        torch.cuda.empty_cache()
    return rows


PREFILL_SHAPES = [("llama", 64, 1024), ("qwen", 64, 1024), ("llama", 1, 4096), ("llama", 16, 4096),
                  ("qwen", 16, 4096), ("qwen", 1, 4096)]  # fmt: skip


def prefill_rows(device: torch.device, old: Any, repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for heads, batch, context in PREFILL_SHAPES:
        num_heads, _, head_dim = HEAD_LAYOUTS[heads]
        s = make_set(batch, context, context, 16, HEAD_LAYOUTS[heads], torch.bfloat16, device, shuffle=False)
        md, scale = s.metadata, head_dim**-0.5
        out = torch.full_like(s.query, float("nan"))
        q4 = s.query.view(batch, context, num_heads, head_dim).transpose(1, 2)

        def sdpa(q4: torch.Tensor = q4, s: Any = s, scale: float = scale) -> torch.Tensor:
            return F.scaled_dot_product_attention(q4, s.k_contig, s.v_contig, is_causal=True, scale=scale,
                                                  enable_gqa=True)  # fmt: skip

        ref = sdpa()
        cands: list[tuple[str, Any, PrefillLaunch | None]] = [
            ("new", paged_prefill_attention, PrefillLaunch())
        ]
        if old is not None:
            cands.insert(0, ("old", old.paged_prefill_attention, None))
        times: dict[str, list[float]] = {name: [] for name, _, _ in cands}
        times["sdpa"] = []
        errs: dict[str, float] = {}
        for _ in range(repeats):
            for name, fn, launch in cands:

                def ours(
                    fn: Any = fn, launch: Any = launch, s: Any = s, md: Any = md, out: Any = out,
                    scale: float = scale,
                ) -> None:  # fmt: skip
                    kw = {} if launch is None else {"launch": launch}
                    fn(out, s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, scale, **kw)

                out.fill_(float("nan"))
                ours()
                errs[name] = rel_error(out.view(batch, context, num_heads, head_dim).transpose(1, 2), ref)
                times[name].append(time_ms(ours, device))
            times["sdpa"].append(time_ms(sdpa, device))
        flops = 4 * batch * num_heads * head_dim * context * (context + 1) / 2
        sdpa_med = statistics.median(times["sdpa"])
        for name, _, _ in cands:
            med = statistics.median(times[name])
            row = {"kernel": "prefill", "heads": heads, "batch": batch, "context": context, "variant": name,
                   "ms_each": times[name], "ms_median": med, "sdpa_ms_each": times["sdpa"],
                   "ratio_median": med / sdpa_med,
                   "ratio_each": [t / u for t, u in zip(times[name], times["sdpa"], strict=True)],
                   "tflops": flops / med / 1e9, "err": errs[name]}  # fmt: skip
            rows.append(row)
            print(f"prefill {heads:5} {batch:>2}x{context:<5} {name:<4} ms={med:.4f} sdpa={sdpa_med:.4f} "
                  f"ratio={row['ratio_median']:.3f} each={[round(r, 3) for r in row['ratio_each']]} "
                  f"tflops={row['tflops']:.0f} err={errs[name]:.1e}", flush=True)  # fmt: skip
        del s, out, q4
        torch.cuda.empty_cache()
    return rows


def kernel_resources() -> list[dict[str, Any]]:
    """Registers, spills and shared memory of every compiled variant (occupancy: 64k registers and
    228 KB of shared memory per SM)."""
    from pagedllm.attention.triton import decode, prefill

    rows = []
    for name, fn in (("decode", decode._decode_split_kernel), ("prefill", prefill._prefill_kernel)):
        try:
            for cache in fn.device_caches.values():
                for kernel in cache[0].values():
                    md = kernel.metadata
                    rows.append({"kernel": name, "num_warps": md.num_warps, "num_stages": md.num_stages,
                                 "n_regs": kernel.n_regs, "n_spills": kernel.n_spills,
                                 "shared": md.shared})  # fmt: skip
        except Exception as e:  # an internal of Triton's: report, never fail the run
            print(f"resources of {name}: {e!r}", flush=True)
    for r in rows:
        print("resources", r, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--old-prefill", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-prefill", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--verify", action="store_true", help="candidate defaults across the table")
    parser.add_argument("--kvblock", action="store_true", help="several KV heads per decode program")
    args = parser.parse_args()
    device = torch.device("cuda")
    old = None
    if args.old_prefill is not None:
        spec = importlib.util.spec_from_file_location("old_prefill", args.old_prefill)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_prefill"] = old
        spec.loader.exec_module(old)
    t0 = time.time()
    copy_bw = copy_bandwidth(device)
    print(f"{torch.cuda.get_device_name(device)}: copy bandwidth {copy_bw / 1e12:.2f} TB/s", flush=True)
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(device), "copy_bandwidth": copy_bw,
                              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}  # fmt: skip
    try:
        if not args.skip_decode:
            rows += decode_rows(device, copy_bw, args.repeats, args.verify, args.kvblock)
            print(f"decode done at {time.time() - t0:.0f} s", flush=True)
        if not args.skip_prefill:
            rows += prefill_rows(device, old, args.repeats)
            print(f"prefill done at {time.time() - t0:.0f} s", flush=True)
        result["resources"] = kernel_resources()
    finally:
        args.out.write_text(json.dumps(result, indent=1))
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
