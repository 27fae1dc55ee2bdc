"""Session 23: does the order in which a decode linear streams its weights cost DRAM bandwidth?

The skinny linears (``model/layers/skinny_linear.py``) read a ``[BLOCK_N, BLOCK_K]`` tile of the ``[N, K]``
weight per step: BLOCK_N pieces of BLOCK_K * 2 bytes, a row (K * 2 bytes) apart. Sessions 11-16 found
each ~3 us over its bytes' time whatever its size, and session 11 that DRAM is not idle between
kernels. So the question here is how well the reads use DRAM, not when they happen: the same
weight-streaming product, reading the same bytes, from the standard layout and from a tile-packed one
(each ``[BLOCK_N, BLOCK_K]`` tile contiguous, a program's tiles one after another: one sequential
stream a program, as a copy reads). Llama-3.2-1B's linears and LM head at 64 rows, CUDA-graph replays
over rotating weight copies (more than the L2), beside torch's copy of the same bytes.

    python3 benchmarks/gpu/session23_packed_weights.py OUT.json   # on an H100
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import torch
import triton
import triton.language as tl

from pagedllm.bench.kernels import copy_bandwidth, graph_ms

ROWS = 64
# (name, N, K, BLOCK_N, BLOCK_K, warps, stages): the skinny plans' tiles, the input never split. For
# o_proj and down, whose 32-feature tiles the engine splits over two halves of the input, 16-feature
# tiles over the whole input: as many programs (128).
LINEARS = [
    ("qkv", 3072, 2048, 32, 256, 4, 4),
    ("o_proj", 2048, 2048, 16, 256, 4, 4),
    ("gate_up", 16384, 2048, 128, 128, 8, 4),
    ("down", 2048, 8192, 16, 256, 4, 4),
    ("lm_head", 128256, 2048, 128, 128, 8, 4),
]
ROTATE_BYTES = 256 << 20


@triton.jit
def _stream_product(
    x_ptr, w_ptr, y_ptr, N, K,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PACKED: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    rm = tl.arange(0, BLOCK_M)
    r = tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + rm[:, None] * K + rk[None, :]
    if PACKED:  # tile (n, k) at ((n * K / BLOCK_K) + k) * BLOCK_N * BLOCK_K, rows BLOCK_K apart
        w_ptrs = w_ptr + pid_n.to(tl.int64) * BLOCK_N * K + r[:, None] * BLOCK_K + rk[None, :]
        step = BLOCK_N * BLOCK_K
    else:
        w_ptrs = w_ptr + (pid_n * BLOCK_N + r).to(tl.int64)[:, None] * K + rk[None, :]
        step = BLOCK_K
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for _ in range(0, K, BLOCK_K):
        acc = tl.dot(tl.load(x_ptrs), tl.trans(tl.load(w_ptrs)), acc)
        x_ptrs += BLOCK_K
        w_ptrs += step
    tl.store(y_ptr + rm[:, None] * N + (pid_n * BLOCK_N + r)[None, :], acc.to(tl.bfloat16))


def pack(w: torch.Tensor, block_n: int, block_k: int) -> torch.Tensor:
    n, k = w.shape
    return w.view(n // block_n, block_n, k // block_k, block_k).permute(0, 2, 1, 3).contiguous().view(n, k)


def launch(x, w, y, plan, packed):  # type: ignore[no-untyped-def]
    """One product of ``plan`` = (N, K, BLOCK_N, BLOCK_K, warps, stages) as a callable."""
    n, k, block_n, block_k, warps, stages = plan
    return lambda: _stream_product[(n // block_n,)](
        x, w, y, n, k, BLOCK_M=x.shape[0], BLOCK_N=block_n, BLOCK_K=block_k, PACKED=packed,
        num_warps=warps, num_stages=stages,
    )  # fmt: skip


def graph_us(fns: list[Callable[[], Any]]) -> float:
    """Median GPU time of one call of ``fns``, captured back to back in one CUDA graph, in us."""
    ms = graph_ms(fns, torch.device("cuda"))
    assert ms is not None
    return ms * 1e3


def main() -> None:
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)  # the floors' own measure (bytes read + written per second)
    rows = []
    for name, n, k, block_n, block_k, warps, stages in LINEARS:
        nbytes = n * k * 2
        copies = max(2, -(-ROTATE_BYTES // nbytes))
        ws = [torch.randn(n, k, device=device, dtype=torch.bfloat16) / 30 for _ in range(copies)]
        packed = [pack(w, block_n, block_k) for w in ws]
        x = torch.randn(ROWS, k, device=device, dtype=torch.bfloat16)
        y = torch.empty(ROWS, n, device=device, dtype=torch.bfloat16)
        plan = (n, k, block_n, block_k, warps, stages)
        ref = x.float() @ ws[0].float().t()
        errors = {}
        for label, w, is_packed in (("standard", ws[0], False), ("packed", packed[0], True)):
            launch(x, w, y, plan, is_packed)()
            errors[label] = ((y.float() - ref).abs().max() / ref.abs().max()).item()
        half = nbytes // 2
        flat = [w.view(-1).view(torch.uint8) for w in ws]
        row = {
            "linear": name, "n": n, "k": k, "block_n": block_n, "block_k": block_k, "warps": warps,
            "stages": stages, "weight_bytes": nbytes, "floor_us": nbytes / copy_bw * 1e6,
            "standard_us": graph_us([launch(x, w, y, plan, False) for w in ws]),
            "packed_us": graph_us([launch(x, w, y, plan, True) for w in packed]),
            # torch's copy of the same bytes (half read, half written), for scale
            "copy_us": graph_us([lambda f=f, h=half: f[h:].copy_(f[:h]) for f in flat]),
            "max_rel_error": errors,
        }  # fmt: skip
        rows.append(row)
        print(row, flush=True)
        del ws, packed
    with open(sys.argv[1], "w") as f:
        json.dump(
            {"device": torch.cuda.get_device_name(), "copy_bandwidth": copy_bw, "rows": rows}, f, indent=1
        )


if __name__ == "__main__":
    main()
