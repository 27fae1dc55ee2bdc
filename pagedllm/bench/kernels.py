"""Paged attention kernels (Triton) against the copy-bandwidth floor and torch SDPA, in one run.

Decode: one query token per sequence over ``context`` cached tokens, for the head layouts of
Llama-3.1-8B (32 query / 8 KV heads of 128) and Qwen2.5-0.5B (14 / 2 of 64). Time is the median of
``triton.testing.do_bench`` (L2 flushed before every launch, input sets rotated); ``ms_graph`` is the
same launches replayed from one CUDA graph over all rotated sets (no launch gaps). Achieved bandwidth
counts the K/V bytes read once; ``bandwidth_fraction`` divides it by the device-to-device copy
bandwidth measured in the same run (bytes read + written). ``sdpa_ms`` is torch
``scaled_dot_product_attention`` over the same K/V as contiguous per-sequence tensors (the paged blocks
of a sequence are a permutation of its contiguous region, so both compute the same function).
Prefill: every token new, causal, against SDPA with ``is_causal=True`` on the same tokens; ``ms`` from
``do_bench`` as for decode, ``ms_graph`` / ``sdpa_ms_graph`` from CUDA-graph replays of the one launch.
Mixed: a chunk of prefill beside many decodes, in the backend's two mixed-batch modes.

    pagedllm bench kernels                  # the full table, JSON to benchmarks/results/
    pagedllm bench kernels --sweep          # decode/prefill launch variants, layouts
    pagedllm bench kernels --smoke          # tiny shapes, CPU interpreter: checks the script
(``python benchmarks/bench_kernels.py`` runs the same.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if "--smoke" in sys.argv:
    # NOTE: before triton is imported; `pagedllm bench kernels --smoke` sets it in the CLI too.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch
import torch.nn.functional as F

from pagedllm.attention.metadata import AttentionMetadata
from pagedllm.attention.triton import TritonAttentionBackend, paged_decode_attention, paged_prefill_attention
from pagedllm.attention.triton.decode import (
    DecodeLaunch,
    choose_decode_plan,
    choose_num_splits,
    decode_variant,
    default_decode_launch,
)
from pagedllm.attention.triton.prefill import PrefillLaunch
from pagedllm.bench.environment import environment
from pagedllm.bench.roofline import copy_bytes_per_s
from pagedllm.worker.kv_cache import new_kv_cache

RESULTS_DIR = Path("benchmarks") / "results"

# name -> (num_heads, num_kv_heads, head_dim)
HEAD_LAYOUTS = {
    "llama": (32, 8, 128),
    "qwen": (14, 2, 64),
    "llama-3.2-1b": (32, 8, 64),
    "qwen3-0.6b": (16, 8, 128),
}
MODEL_NAMES = {
    "llama": "Llama-3.1-8B",
    "qwen": "Qwen2.5-0.5B",
    "llama-3.2-1b": "Llama-3.2-1B",
    "qwen3-0.6b": "Qwen3-0.6B",
}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
ROTATE_BYTES = 256 << 20  # input sets per config add up to at least this much (several L2s)


# -- timing ----------------------------------------------------------------------------------------


def time_ms(fn: Callable[[], Any], device: torch.device) -> float:
    """Median milliseconds per call."""
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    fn()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def graph_ms(fns: list[Callable[[], Any]], device: torch.device, reps: int = 20) -> float | None:
    """Median milliseconds per call of ``fns`` captured back to back in one CUDA graph."""
    if device.type != "cuda":
        return None
    graph = _captured(fns)
    return statistics.median(_replay_ms(graph, len(fns)) for _ in range(reps))


def graph_ms_interleaved(
    fns: list[Callable[[], Any]], others: list[Callable[[], Any]], device: torch.device, reps: int = 20
) -> tuple[float | None, float | None]:
    """``graph_ms`` of two sets of calls whose graphs are replayed in turn (one, other, one, ...), so that
    whatever moves the GPU's speed between two measurements (its clocks under a long table) moves both
    alike."""
    if device.type != "cuda":
        return None, None
    graphs = _captured(fns), _captured(others)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        for graph, n, out in zip(graphs, (len(fns), len(others)), times, strict=True):
            out.append(_replay_ms(graph, n))
    return statistics.median(times[0]), statistics.median(times[1])


def _captured(fns: list[Callable[[], Any]]) -> torch.cuda.CUDAGraph:
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for fn in fns:  # warm-up outside the graph: compiles and allocator pools
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for fn in fns:
            fn()
    graph.replay()
    return graph


def _replay_ms(graph: torch.cuda.CUDAGraph, calls: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls


def copy_bandwidth(device: torch.device) -> float:
    """Bytes per second of a large device-to-device copy (read + written): the floors' own measure."""
    return copy_bytes_per_s(device, None if device.type == "cuda" else 1 << 24)


# -- paged inputs ----------------------------------------------------------------------------------


@dataclass
class PagedSet:
    """One input set: a paged cache whose sequence ``b`` owns the blocks ``b*n .. b*n+n-1`` (listed in a
    random order in its block table), and the same K/V as SDPA reads them: every sequence's tokens one
    after another (in the blocks' order, which attention over a whole context does not see)."""

    query: torch.Tensor  # [num_tokens, num_heads, head_dim]
    cache: torch.Tensor  # [2, num_blocks, block_size, num_kv_heads, head_dim], laid out as the engine's
    metadata: AttentionMetadata
    k_contig: torch.Tensor  # [batch, num_kv_heads, context, head_dim] (a view of token-major memory)
    v_contig: torch.Tensor


def make_set(
    batch: int,
    context: int,
    query_len: int,
    block_size: int,
    layout: tuple[int, int, int],
    dtype: torch.dtype,
    device: torch.device,
    *,
    token_major: bool = False,
    shuffle: bool = True,
) -> PagedSet:
    """``token_major``: the cache is the token-major memory SDPA reads, not a copy of it laid out as the
    engine's cache (``new_kv_cache``): half the memory, for comparing the two orders."""
    num_heads, num_kv_heads, head_dim = layout
    per_seq = context // block_size
    num_blocks = batch * per_seq
    values = torch.randn(2, num_blocks, block_size, num_kv_heads, head_dim, dtype=dtype, device=device)
    kv = values.view(2, batch, context, num_kv_heads, head_dim).transpose(2, 3)
    k_contig, v_contig = kv[0], kv[1]
    if token_major:
        cache = values
    else:
        cache = new_kv_cache(num_blocks, block_size, num_kv_heads, head_dim, dtype, device)
        cache.copy_(values)
    order = torch.rand(batch, per_seq, device=device).argsort(1) if shuffle else None
    if order is None:
        order = torch.arange(per_seq, device=device).expand(batch, per_seq)
    tables = (order + per_seq * torch.arange(batch, device=device)[:, None]).to(torch.int32)
    starts = [b * query_len for b in range(batch + 1)]
    lens = [context] * batch
    metadata = AttentionMetadata(
        slot_mapping=torch.full((batch * query_len,), -1, dtype=torch.int64, device=device),
        block_tables=tables,
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=device),
        seq_lens=torch.tensor(lens, dtype=torch.int32, device=device),
        max_query_len=query_len,
        max_seq_len=context,
        query_start_loc_host=starts,
        seq_lens_host=lens,
    )
    query = torch.randn(batch * query_len, num_heads, head_dim, dtype=dtype, device=device)
    return PagedSet(query, cache, metadata, k_contig, v_contig)


def step_qkv(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same values laid out as a model hands them to the backend: views into one fused QKV projection
    output [num_tokens, num_heads + 2 * num_kv_heads, head_dim] (the prefill kernel reads the new tokens'
    K/V from these, as in a serving step)."""
    num_heads, num_kv_heads = query.shape[1], key.shape[1]
    qkv = torch.cat([query, key, value], dim=1)
    q, k, v = qkv.split([num_heads, num_kv_heads, num_kv_heads], dim=1)
    return q, k, v


def kv_bytes(batch: int, context: int, layout: tuple[int, int, int], dtype: torch.dtype) -> int:
    _, num_kv_heads, head_dim = layout
    return 2 * batch * context * num_kv_heads * head_dim * torch.empty((), dtype=dtype).element_size()


def fits(
    batch: int, context: int, layout: tuple[int, int, int], dtype: torch.dtype, device: torch.device
) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return kv_bytes(batch, context, layout, dtype) * 2.3 < free - (4 << 30)  # the cache and SDPA's copy


def num_sets(batch: int, context: int, layout: tuple[int, int, int], dtype: torch.dtype) -> int:
    return max(1, min(32, math.ceil(ROTATE_BYTES / kv_bytes(batch, context, layout, dtype))))


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double() - ref.double()).norm() / ref.double().norm()).item()


def storage_order(cache: torch.Tensor) -> str:
    """How a ``[2, blocks, block_size, kv_heads, dim]`` cache lies in memory: "head-major" (the engine's on
    CUDA) or "token-major" (its own order: the engine's on the CPU, and ``make_set(token_major=True)``)."""
    return "head-major" if cache.stride(3) > cache.stride(2) else "token-major"


def sdpa_decode(s: PagedSet) -> torch.Tensor:
    batch, num_heads, head_dim = s.query.shape
    q = s.query.view(batch, num_heads, 1, head_dim)
    return F.scaled_dot_product_attention(q, s.k_contig, s.v_contig, scale=head_dim**-0.5, enable_gqa=True)


# -- decode ----------------------------------------------------------------------------------------


def bench_decode(
    heads: str,
    batch: int,
    context: int,
    block_size: int,
    dtype_name: str,
    device: torch.device,
    copy_bw: float,
    *,
    launch: DecodeLaunch | None = None,
    num_splits: int | None = None,
    token_major: bool = False,
    with_sdpa: bool = True,
) -> dict[str, Any]:
    launch = launch or DecodeLaunch()
    layout = HEAD_LAYOUTS[heads]
    dtype = DTYPES[dtype_name]
    sets = [
        make_set(batch, context, 1, block_size, layout, dtype, device, token_major=token_major)
        for _ in range(num_sets(batch, context, layout, dtype))
    ]
    outs = [torch.full_like(s.query, float("nan")) for s in sets]
    scale = layout[2] ** -0.5
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
    if num_splits is None and launch.kv_heads_per_program is None:  # the kernel's own choice
        kv_per_prog, splits = choose_decode_plan(batch, layout[1], layout[2], context, sms)
        launch = dataclasses.replace(launch, kv_heads_per_program=kv_per_prog)
    else:
        kv_per_prog = launch.kv_heads_per_program or 1
        splits = num_splits or choose_num_splits(batch, layout[1] // kv_per_prog, context, sms)

    def run(i: int) -> None:
        s = sets[i]
        md = s.metadata
        paged_decode_attention(
            outs[i], s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, context, scale,
            num_splits=splits, launch=launch,
        )  # fmt: skip

    counter = [0]

    def rotating() -> None:
        run(counter[0] % len(sets))
        counter[0] += 1

    for i in range(len(sets)):
        run(i)
    ms = time_ms(rotating, device)
    ms_graph = graph_ms([lambda i=i: run(i) for i in range(len(sets))], device)
    num_bytes = kv_bytes(batch, context, layout, dtype)
    # the plan the kernel launched (its 32-token tiles where ``short_tiles_pay``)
    variant = decode_variant(batch, layout[1], layout[2], context, device, splits, launch)
    tiles = default_decode_launch(
        layout[2], block_size, kv_per_prog, splits == 1, launch.carry_block_ids, variant.short_tiles
    )
    row: dict[str, Any] = {
        "kernel": "decode",
        "heads": f"{heads} ({layout[0]}/{layout[1]}x{layout[2]})",
        "batch": batch,
        "context": context,
        "block_size": block_size,
        "dtype": dtype_name,
        "layout": storage_order(sets[0].cache),
        "num_splits": splits,
        "kv_heads_per_program": kv_per_prog,
        "launch": {  # as the kernel ran: the launch's fields, else the shape's defaults
            "block_n": launch.block_n or tiles.block_n,
            "num_warps": launch.num_warps or tiles.num_warps,
            "num_stages": launch.num_stages or tiles.num_stages,
            "carry_block_ids": tiles.carry_block_ids,
        },
        "num_rotated_sets": len(sets),
        "kv_bytes": num_bytes,
        "ms": ms,
        "ms_graph": ms_graph,
        "floor_ms": num_bytes / copy_bw * 1e3,
        "bandwidth_gbps": num_bytes / (ms * 1e-3) / 1e9,
        "bandwidth_fraction": num_bytes / (ms * 1e-3) / copy_bw,
        "bandwidth_fraction_graph": None if ms_graph is None else num_bytes / (ms_graph * 1e-3) / copy_bw,
        "sdpa_ms": None,
        "sdpa_ratio": None,
        "sdpa_ms_graph": None,
        "sdpa_ratio_graph": None,
        "max_rel_error_vs_sdpa": None,
    }
    if with_sdpa:
        errors = [
            rel_error(outs[i].view(batch, layout[0], 1, -1), sdpa_decode(s)) for i, s in enumerate(sets)
        ]
        counter[0] = 0

        def rotating_sdpa() -> None:
            sdpa_decode(sets[counter[0] % len(sets)])
            counter[0] += 1

        row["sdpa_ms"] = time_ms(rotating_sdpa, device)
        row["sdpa_ratio"] = ms / row["sdpa_ms"]
        row["sdpa_ms_graph"] = graph_ms([lambda s=s: sdpa_decode(s) for s in sets], device)
        if ms_graph is not None and row["sdpa_ms_graph"]:
            row["sdpa_ratio_graph"] = ms_graph / row["sdpa_ms_graph"]
        row["max_rel_error_vs_sdpa"] = max(errors)
    return row


# -- prefill ---------------------------------------------------------------------------------------


@dataclass
class PrefillCase:
    """Whole prompts as one prefill step (every token new, causal, blocks in order: causal attention
    depends on the order, and SDPA must see the same one): the step's Q/K/V as a model hands them to
    the backend, our kernel over them, and SDPA over the same K/V seen as contiguous tensors."""

    paged: PagedSet
    query: torch.Tensor  # [batch * context, num_heads, head_dim]
    key: torch.Tensor  # [batch * context, num_kv_heads, head_dim], views into one fused QKV output
    value: torch.Tensor
    batch: int
    context: int
    scale: float

    def attend(self, out: torch.Tensor, launch: PrefillLaunch | None = None, **kwargs: Any) -> None:
        """Told what the engine's backend tells it of a plain prefill step (no cached tokens, every
        sequence ``context`` new tokens), unless ``kwargs`` say otherwise."""
        md = self.paged.metadata
        facts = {"cached_prefix": False, "shortest_query": self.context, **kwargs}
        paged_prefill_attention(
            out, self.query, self.paged.cache, md.block_tables, md.seq_lens, md.query_start_loc, self.scale,
            key=self.key, value=self.value, launch=launch or PrefillLaunch(), **facts,
        )  # fmt: skip

    def sdpa(self) -> torch.Tensor:
        """[batch, num_heads, context, head_dim]"""
        q = self.query.view(self.batch, self.context, *self.query.shape[1:]).transpose(1, 2)
        return F.scaled_dot_product_attention(
            q, self.paged.k_contig, self.paged.v_contig, is_causal=True, scale=self.scale, enable_gqa=True
        )


def make_prefill_case(
    heads: str, batch: int, context: int, block_size: int, dtype: torch.dtype, device: torch.device
) -> PrefillCase:
    _, num_kv_heads, head_dim = layout = HEAD_LAYOUTS[heads]
    s = make_set(batch, context, context, block_size, layout, dtype, device, shuffle=False)
    n = batch * context
    query, key, value = step_qkv(
        s.query, s.cache[0].reshape(n, num_kv_heads, head_dim), s.cache[1].reshape(n, num_kv_heads, head_dim)
    )
    return PrefillCase(s, query, key, value, batch, context, head_dim**-0.5)


def bench_prefill(
    heads: str,
    batch: int,
    context: int,
    block_size: int,
    dtype_name: str,
    device: torch.device,
    *,
    launch: PrefillLaunch | None = None,
) -> dict[str, Any]:
    launch = launch or PrefillLaunch()
    num_heads, num_kv_heads, head_dim = HEAD_LAYOUTS[heads]
    case = make_prefill_case(heads, batch, context, block_size, DTYPES[dtype_name], device)
    out = torch.full_like(case.query, float("nan"))

    def ours() -> None:
        case.attend(out, launch)

    sdpa = case.sdpa
    ours()
    error = rel_error(out.view(batch, context, num_heads, head_dim).transpose(1, 2), sdpa())
    ms, sdpa_ms = time_ms(ours, device), time_ms(sdpa, device)
    # NOTE: do_bench times a launch shorter than its host path (~50-100 us on the H100's host, more
    # through TMA descriptors) by the host, and flushes the L2 before each launch, which slows cuDNN's
    # SDPA more than this kernel; the graph replays are each kernel's own GPU time.
    ms_graph, sdpa_ms_graph = graph_ms_interleaved([ours], [sdpa], device)
    # Which kernel torch's default picked is not reported: time the two fused backends alone too.
    by_backend: dict[str, float | None] = {}
    for name in ("FLASH_ATTENTION", "CUDNN_ATTENTION"):
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel(getattr(SDPBackend, name)):
                by_backend[name.lower()] = time_ms(sdpa, device)
        except (RuntimeError, AttributeError, ImportError):
            by_backend[name.lower()] = None
    flops = 4 * batch * num_heads * head_dim * context * (context + 1) / 2  # causal: half the square
    return {
        "kernel": "prefill",
        "heads": f"{heads} ({num_heads}/{num_kv_heads}x{head_dim})",
        "batch": batch,
        "context": context,
        "block_size": block_size,
        "dtype": dtype_name,
        "launch": {
            "block_m": launch.block_m,
            "block_n": launch.block_n,
            "num_warps": launch.num_warps,
            "num_stages": launch.num_stages,
        },
        "ms": ms,
        "tflops": flops / (ms * 1e-3) / 1e12,
        "bandwidth_fraction": None,
        "sdpa_ms": sdpa_ms,
        "sdpa_ratio": ms / sdpa_ms,
        "ms_graph": ms_graph,
        "sdpa_ms_graph": sdpa_ms_graph,
        "sdpa_ratio_graph": None if ms_graph is None or not sdpa_ms_graph else ms_graph / sdpa_ms_graph,
        "sdpa_flash_ms": by_backend["flash_attention"],
        "sdpa_cudnn_ms": by_backend["cudnn_attention"],
        "max_rel_error_vs_sdpa": error,
    }


# -- mixed batch -----------------------------------------------------------------------------------


def bench_mixed(
    heads: str,
    num_decodes: int,
    decode_context: int,
    chunk: int,
    chunk_cached: int,
    block_size: int,
    dtype_name: str,
    device: torch.device,
) -> list[dict[str, Any]]:
    """One prefill chunk (``chunk`` new tokens after ``chunk_cached``) beside ``num_decodes`` decodes."""
    layout = HEAD_LAYOUTS[heads]
    num_heads, num_kv_heads, head_dim = layout
    dtype = DTYPES[dtype_name]
    seqs = [(decode_context, 1)] * num_decodes + [(chunk_cached + chunk, chunk)]
    per_seq = [-(-ctx // block_size) for ctx, _ in seqs]
    num_blocks = sum(per_seq)
    cache = torch.randn(2, num_blocks, block_size, num_kv_heads, head_dim, dtype=dtype, device=device)
    ids = torch.randperm(num_blocks, device=device).to(torch.int32)
    tables = torch.zeros(len(seqs), max(per_seq), dtype=torch.int32, device=device)
    start = 0
    for i, n in enumerate(per_seq):
        tables[i, :n] = ids[start : start + n]
        start += n
    starts = [0]
    for _, q in seqs:
        starts.append(starts[-1] + q)
    lens = [ctx for ctx, _ in seqs]
    md = AttentionMetadata(
        slot_mapping=torch.full((starts[-1],), -1, dtype=torch.int64, device=device),
        block_tables=tables,
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=device),
        seq_lens=torch.tensor(lens, dtype=torch.int32, device=device),
        max_query_len=chunk,
        max_seq_len=max(lens),
        query_start_loc_host=starts,
        seq_lens_host=lens,
    )
    # The new tokens' K/V: what their cache slots hold.
    host_tables = tables.tolist()
    slots = [
        host_tables[i][p // block_size] * block_size + p % block_size
        for i, (ctx, q) in enumerate(seqs)
        for p in range(ctx - q, ctx)
    ]
    flat = cache.view(2, -1, num_kv_heads, head_dim)
    slot_index = torch.tensor(slots, device=device)
    query = torch.randn(starts[-1], num_heads, head_dim, dtype=dtype, device=device)
    query, key, value = step_qkv(query, flat[0, slot_index], flat[1, slot_index])
    rows = []
    outs = {}
    scale = head_dim**-0.5
    for mode in ("split", "unified"):
        backend = TritonAttentionBackend(mode)
        outs[mode] = backend.attend(query, cache, md, scale, new_kv=(key, value))
        ms = time_ms(lambda b=backend: b.attend(query, cache, md, scale, new_kv=(key, value)), device)
        rows.append(
            {
                "kernel": f"mixed-{mode}",
                "heads": f"{heads} ({num_heads}/{num_kv_heads}x{head_dim})",
                "batch": num_decodes + 1,
                "context": decode_context,
                "block_size": block_size,
                "dtype": dtype_name,
                "workload": f"{num_decodes} decodes x {decode_context} + chunk {chunk} after {chunk_cached}",
                "ms": ms,
                "bandwidth_fraction": None,
                "sdpa_ms": None,
            }
        )
    rows[1]["rel_diff_split_vs_unified"] = rel_error(outs["split"], outs["unified"])
    return rows


# -- driver ----------------------------------------------------------------------------------------


def device_slug(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name(device).lower()
    for chip in ("h200", "h100", "a100", "l40s", "l4"):
        if chip in name:
            return chip
    return name.replace(" ", "-")


def attempt(rows: list[dict[str, Any]], what: str, fn: Callable[..., Any], *a: Any, **kw: Any) -> None:
    """Runs one measurement; a failure is recorded as a row and the run goes on."""
    try:
        result = fn(*a, **kw)
    except Exception as e:  # one bad config must not lose the whole table
        traceback.print_exc()
        rows.append({"kernel": "error", "what": what, "error": repr(e)})
        print(f"FAILED {what}: {e!r}", flush=True)
        return
    for row in result if isinstance(result, list) else [result]:
        rows.append(row)
        print_row(row)


def run_sweep(args: argparse.Namespace, device: torch.device, copy_bw: float) -> list[dict[str, Any]]:
    """Decode launch variants, split counts and the token-major layout; prefill tile variants."""
    rows = []
    shapes = [("qwen", 64, 4096), ("qwen", 16, 16384), ("llama", 16, 4096)]
    if args.smoke:
        shapes = [("qwen", 2, 128)]
    variants = [DecodeLaunch()] + [
        DecodeLaunch(block_n=n, num_warps=w, num_stages=st, carry_block_ids=carry)
        for n, w, st, carry in [
            (64, 4, 4, False),
            (128, 4, 3, False),
            (128, 4, 4, False),
            (32, 4, 3, True),
            (64, 4, 3, True),
            (128, 4, 3, True),
        ]
    ]
    for heads, batch, context in shapes:
        if not fits(batch, context, HEAD_LAYOUTS[heads], torch.bfloat16, device):
            continue
        what = f"decode {heads} {batch}x{context} bs16"
        common = (heads, batch, context, 16, "bf16", device, copy_bw)
        for launch in variants:
            attempt(rows, f"{what} {launch}", bench_decode, *common, launch=launch, with_sdpa=False)
        for splits in (2, 4, 6):
            attempt(
                rows, f"{what} splits={splits}", bench_decode, *common, num_splits=splits, with_sdpa=False
            )
        attempt(rows, f"{what} token-major", bench_decode, *common, token_major=True, with_sdpa=False)
    prefill_variants = [PrefillLaunch()] + [
        PrefillLaunch(block_m=m, block_n=n, num_warps=w, num_stages=st)
        for m, n, w, st in [
            (128, 64, 4, 3),
            (128, 128, 8, 3),
            (64, 64, 4, 3),
            (128, 32, 4, 3),
            (128, 64, 8, 2),
        ]
    ]
    for heads in ("llama", "qwen"):
        batch, context = (1, 128) if args.smoke else (4, 4096)
        for launch in prefill_variants:
            what = f"prefill {heads} {launch}"
            attempt(rows, what, bench_prefill, heads, batch, context, 16, "bf16", device, launch=launch)
    return rows


def run_profile(device: torch.device) -> None:
    """One launch each of our kernels and SDPA's on a prefill and a decode shape, between
    cudaProfilerStart/Stop, for ``ncu --profile-from-start off`` (warm-up launches stay outside)."""
    cases = []
    for heads, batch, context in (("llama", 16, 4096), ("qwen", 16, 4096)):
        layout = HEAD_LAYOUTS[heads]
        s = make_set(batch, context, context, 16, layout, torch.bfloat16, device, shuffle=False)
        md, out = s.metadata, torch.empty_like(s.query)
        q4 = s.query.view(batch, context, layout[0], layout[2]).transpose(1, 2)
        cases.append(lambda s=s, md=md, out=out: paged_prefill_attention(
            out, s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, 0.1))  # fmt: skip
        cases.append(lambda q4=q4, s=s: F.scaled_dot_product_attention(
            q4, s.k_contig, s.v_contig, is_causal=True, enable_gqa=True))  # fmt: skip
    s = make_set(64, 4096, 1, 16, HEAD_LAYOUTS["qwen"], torch.bfloat16, device)
    md, out = s.metadata, torch.empty_like(s.query)
    cases.append(lambda: paged_decode_attention(
        out, s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, 4096, 0.1))  # fmt: skip
    cases.append(lambda: sdpa_decode(s))
    launch_under_profiler(cases)


def launch_under_profiler(cases: list[Callable[[], Any]], warmups: int = 1) -> None:
    """Each case ``warmups`` times (compiles, allocator), then once more between cudaProfilerStart and
    Stop, so that ``ncu --profile-from-start off`` sees one launch of each."""
    for _ in range(warmups):
        for fn in cases:
            fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    for fn in cases:
        fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


def run_table(args: argparse.Namespace, device: torch.device, copy_bw: float) -> list[dict[str, Any]]:
    rows = []
    decode_launch = DecodeLaunch(block_n=args.decode_block_n, carry_block_ids=args.carry_block_ids)
    for heads in args.heads:
        for block_size in args.block_sizes:
            for batch in args.batches:
                for context in args.contexts:
                    if not fits(batch, context, HEAD_LAYOUTS[heads], DTYPES[args.dtype], device):
                        print(f"skip decode {heads} {batch}x{context}: does not fit in memory", flush=True)
                        continue
                    what = f"decode {heads} {batch}x{context} bs{block_size}"
                    attempt(
                        rows,
                        what,
                        bench_decode,
                        heads,
                        batch,
                        context,
                        block_size,
                        args.dtype,
                        device,
                        copy_bw,
                        launch=decode_launch,
                    )
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
    for heads in args.heads:
        for batch, context in args.prefill_shapes:
            what = f"prefill {heads} {batch}x{context}"
            attempt(rows, what, bench_prefill, heads, batch, context, args.block_sizes[0], args.dtype, device)
        mixed = (4, 256, 64, 64) if args.smoke else (64, 4096, 2048, 2048)
        attempt(rows, f"mixed {heads}", bench_mixed, heads, *mixed, args.block_sizes[0], args.dtype, device)
    return rows


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_row(r: dict[str, Any]) -> None:
    extra = ""
    if r["kernel"] == "decode":
        graph = fmt(r["bandwidth_fraction_graph"], ".2f")
        extra = f" splits={r['num_splits']} {r['layout']} {r['launch']} graph_frac={graph}"
    elif r["kernel"] == "prefill":
        graph = fmt(r.get("sdpa_ratio_graph"), ".2f")
        extra = f" {r['launch']} tflops={r['tflops']:.0f} x_sdpa_graph={graph}"
    print(
        f"{r['kernel']:<14} {r['heads']:<20} b={r['batch']:<4} ctx={r['context']:<6} bs={r['block_size']:<4} "
        f"ms={r['ms']:.4f} frac={fmt(r['bandwidth_fraction'], '.3f')} sdpa_ms={fmt(r.get('sdpa_ms'), '.4f')}"
        + extra,
        flush=True,
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    """ms / sdpa_ms: do_bench medians (launch overhead included); *_g: the same from CUDA-graph replays."""
    header = (
        f"{'kernel':<14} {'heads':<17} {'batch':>5} {'context':>7} {'bs':>4} {'splits':>6} {'ms':>8} "
        f"{'frac':>5} {'sdpa_ms':>8} {'x_sdpa':>6} {'ms_g':>8} {'frac_g':>6} {'sdpa_g':>8} {'x_sdpa_g':>8} "
        f"{'err':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if r["kernel"] == "error":
            print(f"error: {r['what']}: {r['error']}")
            continue
        print(
            f"{r['kernel']:<14} {r['heads'].split(' (')[0]:<17} {r['batch']:>5} {r['context']:>7} "
            f"{r['block_size']:>4} {fmt(r.get('num_splits'), 'd'):>6} {r['ms']:>8.4f} "
            f"{fmt(r.get('bandwidth_fraction'), '.3f'):>5} {fmt(r.get('sdpa_ms'), '.4f'):>8} "
            f"{fmt(r.get('sdpa_ratio'), '.2f'):>6} {fmt(r.get('ms_graph'), '.4f'):>8} "
            f"{fmt(r.get('bandwidth_fraction_graph'), '.3f'):>6} {fmt(r.get('sdpa_ms_graph'), '.4f'):>8} "
            f"{fmt(r.get('sdpa_ratio_graph'), '.2f'):>8} {fmt(r.get('max_rel_error_vs_sdpa'), '.1e'):>7}"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heads", nargs="+", default=["llama", "qwen"], choices=sorted(HEAD_LAYOUTS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64, 256])
    parser.add_argument("--contexts", nargs="+", type=int, default=[128, 1024, 4096, 16384])
    parser.add_argument("--block-sizes", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument(
        "--prefill-shapes",
        nargs="+",
        type=lambda s: tuple(int(x) for x in s.split("x")),
        default=[(1, 1024), (1, 4096), (1, 16384), (16, 1024), (16, 4096), (64, 1024)],
        help="BATCHxCONTEXT",
    )
    parser.add_argument(
        "--decode-block-n", type=int, default=None, help="the table's decode tile (default: per shape)"
    )
    parser.add_argument(
        "--carry-block-ids",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the table's decode loads each tile's block ids a tile ahead, or not (default: per shape)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="launch variants and layouts instead of the table"
    )
    parser.add_argument("--profile", action="store_true", help="one launch per kernel, for ncu")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU interpreter")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default results/kernels-<device>.json)"
    )


def run(args: argparse.Namespace) -> int:
    if args.smoke:
        args.heads, args.batches, args.contexts, args.block_sizes = ["qwen"], [3], [64], [16, 64]
        args.prefill_shapes = [(2, 64)]
        args.dtype = "fp32"
    if not args.smoke and not torch.cuda.is_available():
        raise ValueError("bench kernels times the Triton kernels on a CUDA GPU, and torch sees none here "
                         "(--smoke runs tiny shapes through the CPU interpreter)")  # fmt: skip
    device = torch.device("cpu" if args.smoke else "cuda")
    torch.manual_seed(0)
    if args.profile:
        run_profile(device)
        return 0
    copy_bw = copy_bandwidth(device)
    print(
        f"device {device_slug(device)}: copy bandwidth {copy_bw / 1e12:.2f} TB/s (read + write)", flush=True
    )
    rows = run_sweep(args, device, copy_bw) if args.sweep else run_table(args, device, copy_bw)
    result = {
        **environment(),
        "benchmark": "kernels-sweep" if args.sweep else "kernels",
        "copy_bandwidth_bytes_per_s": copy_bw,
        "device_properties": None
        if device.type != "cuda"
        else {
            "name": torch.cuda.get_device_name(device),
            "multi_processor_count": torch.cuda.get_device_properties(device).multi_processor_count,
        },
        "rows": rows,
    }
    name = f"kernels-{'sweep-' if args.sweep else ''}{device_slug(device)}"
    out = args.out or RESULTS_DIR / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    print_table(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
