"""Session 12: `pagedllm bench decode` with switches that drop a decode step's small kernels, to bound
what fusing them into their neighbours could save. The switched-off steps compute wrong numbers: only
their times mean anything.

- ``S12_SKIP_SILU=1``: SiLU-and-multiply returns the gate half (a view, no launch).
- ``S12_SKIP_NORM=1``: every RMSNorm returns its input (and the residual untouched), no launch.
- ``S12_SKIP_ROTARY=1``: rotary embedding returns q and k as they are, no launch.
- ``S12_SKIP_KV=1``: the Triton backend does not write the step's K/V into the cache.
- ``S12_NO_GATED=1``: gate_up and SiLU-and-multiply as two launches, as before the gated skinny launch
  (right numbers: the A/B switch of that change).

The rest of the command line is ``pagedllm bench decode``'s.
"""

import os
import sys

import torch

from pagedllm.attention.triton.backend import TritonAttentionBackend
from pagedllm.cli import main
from pagedllm.model.layers import activation, layernorm, linear, rotary

if os.environ.get("S12_SKIP_SILU") == "1":

    def _gate_half(self: activation.SiluAndMul, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1] // 2]

    activation.SiluAndMul.forward = _gate_half  # type: ignore[method-assign]

if os.environ.get("S12_SKIP_NORM") == "1":

    def _identity_norm(self, x, residual=None):  # type: ignore[no-untyped-def]
        return x if residual is None else (x, residual)

    layernorm.RMSNorm.forward = _identity_norm  # type: ignore[method-assign]

if os.environ.get("S12_SKIP_ROTARY") == "1":

    def _no_rotary(self, positions, q, k):  # type: ignore[no-untyped-def]
        return q, k

    rotary.RotaryEmbedding.forward = _no_rotary  # type: ignore[method-assign]

if os.environ.get("S12_SKIP_KV") == "1":

    def _no_write(self, key, value, kv_cache, slot_mapping):  # type: ignore[no-untyped-def]
        return None

    TritonAttentionBackend.write_kv = _no_write  # type: ignore[method-assign]

if os.environ.get("S12_NO_GATED") == "1":

    def _unfused(self, x):  # type: ignore[no-untyped-def]
        return None

    linear.MergedColumnParallelLinear.fused_silu_and_mul = _unfused  # type: ignore[method-assign]

sys.exit(main(["bench", "decode", *sys.argv[1:]]))
