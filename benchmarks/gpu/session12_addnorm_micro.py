"""Session 12, calls 8-9: the 1B's qkv and gate_up skinny launches at 64 rows alone (no PDL), with and
without the AddNorm input, at several input-tile depths. Prints us. Needs the code of d8afa03 (taken back:
SkinnyAddNorm is gone). Call 8 timed eager launches, which the
host's launch overhead dominated (~55 us each, meaningless); call 9 times launches in a CUDA graph."""

import functools
import json
import os
import sys

import torch

from pagedllm.model.layers.skinny_linear import SkinnyAddNorm, SkinnyConfig, skinny_linear


def time_us(fn, per_graph=20, replays=20):
    """GPU time of one launch: ``per_graph`` launches captured in a CUDA graph, replayed (the host's
    launch overhead, ~50 us a Triton launch from Python, would hide the kernel otherwise)."""
    fn()  # compile
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(per_graph):
            fn()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / (replays * per_graph)


rows = []
dev, dt = "cuda", torch.bfloat16
for name, n, k, gated, configs in [
    ("qkv", 3072, 2048, False, [SkinnyConfig(64, 32, 256, 1, 4, 4), SkinnyConfig(64, 32, 128, 1, 4, 4),
                                SkinnyConfig(64, 32, 64, 1, 4, 4), SkinnyConfig(64, 32, 128, 1, 4, 2)]),
    ("gate_up", 16384, 2048, True, [SkinnyConfig(64, 64, 128, 1, 8, 4), SkinnyConfig(64, 64, 64, 1, 8, 4),
                                    SkinnyConfig(64, 64, 128, 1, 8, 3), SkinnyConfig(64, 64, 64, 1, 4, 4)]),
]:  # fmt: skip
    w = torch.randn(n, k, device=dev, dtype=dt) * 0.02
    x, res = (torch.randn(64, k, device=dev, dtype=dt) for _ in range(2))
    gamma = torch.ones(k, device=dev, dtype=dt)
    for c in configs:
        for with_norm in (False, True):
            add_norm = SkinnyAddNorm(res, torch.empty_like(res), gamma, 1e-5) if with_norm else None
            run = functools.partial(skinny_linear, x, w, c, gated=gated, add_norm=add_norm, use_pdl=False)
            try:
                us: float | str = time_us(run)
            except Exception as e:  # a plan that does not compile is a row too
                us = f"{type(e).__name__}: {e}"[:120]
            row = {
                "linear": name,
                "config": [c.block_k, c.num_stages, c.num_warps],
                "add_norm": with_norm,
                "us": us,
            }
            print(row, flush=True)
            rows.append(row)
with open(sys.argv[1], "w") as f:
    json.dump({"note": os.environ.get("NOTE", ""), "rows": rows}, f, indent=1)
