"""Session 24: do the decode linears read their weights faster with rows a little more than 4 KB apart?

Session 23's probe found a weight-streaming product 1-6% faster over tile-packed weights (each
``[BLOCK_N, BLOCK_K]`` tile contiguous) than over the standard ``[N, K]`` layout. In the standard layout
a program's tile is BLOCK_N pieces of BLOCK_K * 2 bytes a row apart, and the 1B's rows are 4 KB or
16 KB (powers of two). If the loss comes from those pieces landing on few DRAM channels at a time, rows
padded to a stride that is not a power of two should recover it, and unlike packing, cuBLAS reads such
weights as they are (a leading dimension larger than K), so prefill needs nothing new.

Times Llama-3.2-1B's linears and LM head, CUDA-graph replays over rotating weight copies (more than the
L2), for row paddings of 0, 8, 64 and 128 elements:
- the engine's ``skinny_linear`` with ``skinny_config``'s plan at 64 rows;
- cuBLAS (``F.linear``) at 64 and 256 rows.

    python3 benchmarks/gpu/session24_padded_weights.py OUT.json   # on an H100
"""

from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F

from pagedllm.bench.kernels import copy_bandwidth, graph_ms
from pagedllm.model.layers.skinny_linear import skinny_config, skinny_linear

LINEARS = [("qkv", 3072, 2048), ("o_proj", 2048, 2048), ("gate_up", 16384, 2048), ("down", 2048, 8192),
           ("lm_head", 128256, 2048)]  # fmt: skip
PADS = (0, 8, 64, 128)
ROTATE_BYTES = 256 << 20


def padded(w: torch.Tensor, pad: int) -> torch.Tensor:
    """``w``'s values in rows ``pad`` elements longer than they are (the padding never read)."""
    n, k = w.shape
    buf = torch.zeros(n, k + pad, dtype=w.dtype, device=w.device)
    buf[:, :k].copy_(w)
    return buf[:, :k]


def us(fns: list) -> float:  # type: ignore[type-arg]
    ms = graph_ms(fns, torch.device("cuda"))
    assert ms is not None
    return ms * 1e3


def main() -> None:
    device = torch.device("cuda")
    copy_bw = copy_bandwidth(device)
    rows = []
    for name, n, k in LINEARS:
        nbytes = n * k * 2
        copies = max(2, -(-ROTATE_BYTES // nbytes))
        base = [torch.randn(n, k, device=device, dtype=torch.bfloat16) / 30 for _ in range(copies)]
        x64 = torch.randn(64, k, device=device, dtype=torch.bfloat16)
        x256 = torch.randn(256, k, device=device, dtype=torch.bfloat16)
        plan = skinny_config(n, k)
        ref = F.linear(x64, base[0])
        row = {"linear": name, "n": n, "k": k, "plan": str(plan), "floor_us": nbytes / copy_bw * 1e6}
        for pad in PADS:
            ws = [padded(w, pad) for w in base] if pad else base
            assert ws[0].stride() == (k + pad, 1)
            got = skinny_linear(x64, ws[0], plan) if plan is not None else None
            if got is not None:
                assert torch.allclose(got.float(), ref.float(), atol=2e-2, rtol=2e-2), name
            row[f"pad{pad}"] = {
                "skinny64_us": us([lambda w=w, x=x64, p=plan: skinny_linear(x, w, p) for w in ws])
                if plan
                else None,
                "cublas64_us": us([lambda w=w, x=x64: F.linear(x, w) for w in ws]),
                "cublas256_us": us([lambda w=w, x=x256: F.linear(x, w) for w in ws]),
            }
            del ws
        rows.append(row)
        print(row, flush=True)
        del base
    with open(sys.argv[1], "w") as f:
        json.dump(
            {"device": torch.cuda.get_device_name(), "copy_bandwidth": copy_bw, "rows": rows}, f, indent=1
        )


if __name__ == "__main__":
    main()
