"""Session 15: a decode layer's linears and norms at 256 rows, in the forms the engine runs them, without
attention: the wide skinny launches (norm handed over, rotary and SiLU in the epilogues, PDL) against
cuBLAS with the separate norm, rotary and SiLU-and-multiply kernels.

Call 2 measured the 1B's whole step 9% slower on the wide plans at 256 rows, although call 1's chain of
plain linears was 6% faster; this finds which form loses. Per form, CUDA-graph replays over rotating
weight copies (us); then ``layers`` layers chained, distinct weights, in a graph. Variants of the wide
chain: every form as the engine runs it; qkv without rotary (rotary its own launch); the norms not
handed over (RMSNorm kernels between plain skinny launches). ``python3 session15_forms.py {1b,qwen3,8b}
[rows]``; writes ``$OUT/forms-<model>-<rows>.json``.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from session9_linears import graph_time_us

from pagedllm.model.layers import fused_ops
from pagedllm.model.layers.rotary import RotaryEmbedding
from pagedllm.model.layers.skinny_linear import (
    SkinnyRope,
    maybe_skinny_linear,
    maybe_skinny_linear_add_norm,
    maybe_skinny_rotary_linear,
    maybe_skinny_silu_and_mul,
)

DTYPE = torch.bfloat16
EPS = 1e-5
# (layers, hidden, intermediate, head_dim, query heads, KV heads)
MODELS = {
    "1b": (16, 2048, 8192, 64, 32, 8),
    "qwen3": (28, 1024, 3072, 128, 16, 8),
    "8b": (32, 4096, 14336, 128, 32, 8),
}


def main() -> None:
    model = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    layers, hidden, inner, head_dim, q_heads, kv_heads = MODELS[model]
    q_size, kv_size = q_heads * head_dim, kv_heads * head_dim
    n_qkv = q_size + 2 * kv_size
    dev = "cuda"
    rotary = RotaryEmbedding(head_dim, 4096, 500000.0).to(dev)
    positions = torch.randint(0, 4096, (rows,), device=dev)
    rope = SkinnyRope(positions, rotary.cos_cache, rotary.sin_cache, head_dim, q_size + kv_size)

    def weights() -> dict[str, torch.Tensor]:
        return {"qkv": torch.randn(n_qkv, hidden, device=dev, dtype=DTYPE) * hidden**-0.5,
                "o": torch.randn(hidden, q_size, device=dev, dtype=DTYPE) * q_size**-0.5,
                "gu": torch.randn(2 * inner, hidden, device=dev, dtype=DTYPE) * hidden**-0.5,
                "down": torch.randn(hidden, inner, device=dev, dtype=DTYPE) * inner**-0.5,
                "n1": torch.ones(hidden, device=dev, dtype=DTYPE),
                "n2": torch.ones(hidden, device=dev, dtype=DTYPE)}  # fmt: skip

    stack = [weights() for _ in range(layers)]
    attn_out = torch.randn(rows, q_size, device=dev, dtype=DTYPE)  # attention's output, a fixed input
    hidden0 = torch.randn(rows, hidden, device=dev, dtype=DTYPE)
    residual = torch.randn(rows, hidden, device=dev, dtype=DTYPE)

    def layer_wide(w, x, rope_in_qkv=True):  # x: a PendingNorm (or the first layer's normed input)
        if rope_in_qkv:
            qkv = maybe_skinny_rotary_linear(x, w["qkv"], None, rope)
        else:
            qkv = maybe_skinny_linear(x, w["qkv"], None)
            qk = qkv[:, : q_size + kv_size]
            fused_ops.rotary_inplace(qk, positions, rotary.cos_cache, rotary.sin_cache, head_dim)
        assert qkv is not None
        pending = maybe_skinny_linear_add_norm(attn_out, w["o"], None, residual, w["n2"], EPS)
        h = maybe_skinny_silu_and_mul(pending, w["gu"], None)
        return maybe_skinny_linear_add_norm(h, w["down"], None, residual, w["n1"], EPS)

    def layer_wide_unfused_norms(w, x):  # x: the normed input
        qkv = maybe_skinny_rotary_linear(x, w["qkv"], None, rope)
        assert qkv is not None
        normed = fused_ops.rms_norm(maybe_skinny_linear(attn_out, w["o"], None), w["n2"], EPS, residual)
        h = maybe_skinny_silu_and_mul(normed, w["gu"], None)
        return fused_ops.rms_norm(maybe_skinny_linear(h, w["down"], None), w["n1"], EPS, residual)

    def layer_cublas(w, x):  # x: the normed input
        qkv = F.linear(x, w["qkv"])
        fused_ops.rotary_inplace(qkv[:, : q_size + kv_size], positions, rotary.cos_cache, rotary.sin_cache,
                                 head_dim)  # fmt: skip
        normed = fused_ops.rms_norm(F.linear(attn_out, w["o"]), w["n2"], EPS, residual)
        h = fused_ops.silu_and_mul(F.linear(normed, w["gu"]))
        return fused_ops.rms_norm(F.linear(h, w["down"]), w["n1"], EPS, residual)

    chains = {
        "cublas": lambda: _chain(layer_cublas, stack, hidden0),
        "wide": lambda: _chain(layer_wide, stack, hidden0),
        "wide, rotary its own launch": lambda: _chain(lambda w, x: layer_wide(w, x, False), stack, hidden0),
        "wide, norms not handed over": lambda: _chain(layer_wide_unfused_norms, stack, hidden0),
    }
    result: dict = {"device": torch.cuda.get_device_name(), "model": model, "rows": rows, "chains": {},
                    "forms": {}}  # fmt: skip
    for _ in range(2):
        for name, run in chains.items():
            us = graph_time_us(lambda i, r=run: r(), 1)
            result["chains"].setdefault(name, []).append(us)
            print(f"chain {name:32s} {us:8.1f} us", flush=True)

    # Each form alone, one layer's weights rotating over the stack (no two calls in a row share weights).
    normed = fused_ops.rms_norm(hidden0, stack[0]["n1"], EPS)
    pend = maybe_skinny_linear_add_norm(attn_out, stack[0]["o"], None, residual.clone(), stack[0]["n2"], EPS)
    h_in = torch.randn(rows, inner, device=dev, dtype=DTYPE)
    o_out = torch.randn(rows, hidden, device=dev, dtype=DTYPE)
    gu_out = torch.randn(rows, 2 * inner, device=dev, dtype=DTYPE)
    forms = {
        "qkv cublas": lambda i: F.linear(normed, stack[i]["qkv"]),
        "rotary": lambda i: fused_ops.rotary_inplace(
            gu_out[:, : q_size + kv_size], positions, rotary.cos_cache, rotary.sin_cache, head_dim
        ),
        "qkv skinny, rotary, handed-over norm": lambda i: maybe_skinny_rotary_linear(
            pend, stack[i]["qkv"], None, rope
        ),
        "qkv skinny plain": lambda i: maybe_skinny_linear(normed, stack[i]["qkv"], None),
        "o_proj cublas": lambda i: F.linear(attn_out, stack[i]["o"]),
        "rms_norm with residual": lambda i: fused_ops.rms_norm(o_out, stack[i]["n2"], EPS, residual),
        "o_proj skinny, hands over": lambda i: maybe_skinny_linear_add_norm(
            attn_out, stack[i]["o"], None, residual, stack[i]["n2"], EPS
        ),
        "o_proj skinny plain": lambda i: maybe_skinny_linear(attn_out, stack[i]["o"], None),
        "gate_up cublas": lambda i: F.linear(normed, stack[i]["gu"]),
        "silu_and_mul": lambda i: fused_ops.silu_and_mul(gu_out),
        "gate_up skinny gated, handed-over norm": lambda i: maybe_skinny_silu_and_mul(
            pend, stack[i]["gu"], None
        ),
        "gate_up skinny gated plain": lambda i: maybe_skinny_silu_and_mul(normed, stack[i]["gu"], None),
        "down cublas": lambda i: F.linear(h_in, stack[i]["down"]),
        "down skinny, hands over": lambda i: maybe_skinny_linear_add_norm(
            h_in, stack[i]["down"], None, residual, stack[i]["n1"], EPS
        ),
        "down skinny plain": lambda i: maybe_skinny_linear(h_in, stack[i]["down"], None),
    }
    for _ in range(2):
        for name, fn in forms.items():
            us = graph_time_us(fn, layers)
            result["forms"].setdefault(name, []).append(us)
            print(f"form {name:40s} {us:7.2f} us", flush=True)
    with open(os.path.join(os.environ.get("OUT", "."), f"forms-{model}-{rows}.json"), "w") as f:
        json.dump(result, f, indent=1)


def _chain(layer, stack, hidden0):
    x = fused_ops.rms_norm(hidden0, stack[0]["n1"], EPS)
    for w in stack:
        x = layer(w, x)
    return x


if __name__ == "__main__":
    main()
