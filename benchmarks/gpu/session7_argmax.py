"""Greedy argmax over bf16 logits of a 128,256-token vocabulary: torch's against the two-pass Triton one
(CUDA-graph replays, GPU time only), at the decode batch sizes of issue 6."""

from __future__ import annotations

import json
import os
import sys

import torch
import triton

from pagedllm.worker.triton_argmax import argmax_rows

rows_out = []
for rows in (1, 64, 256):
    logits = torch.randn(rows, 128_256, device="cuda", dtype=torch.bfloat16)
    assert torch.equal(argmax_rows(logits), logits.argmax(dim=-1))
    torch_us = triton.testing.do_bench_cudagraph(lambda x=logits: x.argmax(dim=-1), rep=200) * 1e3
    ours_us = triton.testing.do_bench_cudagraph(lambda x=logits: argmax_rows(x), rep=200) * 1e3
    floor_us = logits.numel() * 2 / 3.0e12 * 1e6
    rows_out.append({"rows": rows, "torch_us": torch_us, "triton_us": ours_us, "read_at_3TBps_us": floor_us})
    print(
        f"rows {rows:4d}: torch {torch_us:6.1f} us, two-pass Triton {ours_us:6.1f} us "
        f"(bytes at 3 TB/s: {floor_us:.1f} us)"
    )
out = os.environ.get("OUT")
if out:
    with open(os.path.join(out, "argmax.json"), "w") as f:
        result = {"device": torch.cuda.get_device_name(), "note": sys.argv[1:], "rows": rows_out}
        json.dump(result, f, indent=1)
