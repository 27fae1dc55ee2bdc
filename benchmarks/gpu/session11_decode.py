"""Session 11: `pagedllm bench decode` with switches for A/B runs in one checkout.

- ``S11_LM_HEAD_SKINNY=1`` routes ``ParallelLMHead`` through ``linear._linear`` (the skinny kernel at
  <= 64 rows, cuBLAS above).
- ``S11_OLD_SKINNY=1`` plans the skinny linears with session 9's rule (main before session 11's retuning).
- ``S11_NO_CARRY=1``: for the code at 58e1938 (call 13), decode attention with one KV head of <= 64 dims
  per program launches as before its carried block ids (128-token tiles, ids loaded in the iteration).
  Call 11 ran the switch on 3f061fb, where it cleared a module flag. Both were taken back: later code has
  neither, and the switch must not be used on it.
- ``S11_LATE_RELEASE=1`` (call 15) and ``S11_ATTN_NO_PDL=1`` (call 17) set module flags of decode.py trees
  that were never committed (described in those calls' scripts); on any committed code they do nothing.

The rest of the command line is ``pagedllm bench decode``'s. Call 2's prefetch settings were environment
variables of the code at e5efa89 (PAGEDLLM_SKINNY_PREFETCH_MB, PAGEDLLM_KV_PREFETCH), taken back in f58ef9a.
"""

import functools
import os
import sys

import torch
import triton

from pagedllm.attention.triton import decode
from pagedllm.cli import main
from pagedllm.model.layers import linear, skinny_linear, vocab_embedding
from pagedllm.model.layers.skinny_linear import SMEM_BUDGET, SkinnyConfig

if os.environ.get("S11_LM_HEAD_SKINNY") == "1":

    def _forward(self: vocab_embedding.ParallelLMHead, hidden: torch.Tensor) -> torch.Tensor:
        return linear._linear(hidden, self.weight, None)

    vocab_embedding.ParallelLMHead.forward = _forward  # type: ignore[method-assign]


@functools.lru_cache(maxsize=256)
def session9_skinny_config(n: int, k: int, smem_budget: int = SMEM_BUDGET) -> SkinnyConfig | None:
    """``skinny_config`` as of f58ef9a (session 9's rule)."""
    block_n = next((bn for bn in (128, 64, 32) if triton.cdiv(n, bn) >= 120), 16)
    split_k = 1
    if k >= 8192 and block_n <= 64:
        block_n, split_k = block_n * 2, 2
    while triton.cdiv(n, block_n) * split_k < 100 and k // (2 * split_k) >= 512 and split_k < 8:
        split_k *= 2
    block_k = 256 if k // split_k >= 4096 else 128
    num_stages = 3 if block_n >= 64 else 4
    while num_stages * (64 + block_n) * block_k * 2 > smem_budget and block_k > 64:
        block_k //= 2
    while num_stages * (64 + block_n) * block_k * 2 > smem_budget and num_stages > 2:
        num_stages -= 1
    while block_k > 32 and k % (split_k * block_k):
        block_k //= 2
    if k % (split_k * block_k) or num_stages * (64 + block_n) * block_k * 2 > smem_budget:
        return None
    return SkinnyConfig(64, block_n, block_k, split_k, num_warps=4, num_stages=num_stages)


if os.environ.get("S11_OLD_SKINNY") == "1":
    skinny_linear.skinny_config = session9_skinny_config  # type: ignore[assignment]

# Call 17, on a tree not committed: decode attention launched without PDL (its neighbours keep it).
if os.environ.get("S11_ATTN_NO_PDL") == "1":
    decode.ATTENTION_PDL = False  # type: ignore[attr-defined]

# Call 15, on a tree not committed: decode attention lets the next kernel start only at its exit.
if os.environ.get("S11_LATE_RELEASE") == "1":
    decode.EARLY_RELEASE = False  # type: ignore[attr-defined]

if os.environ.get("S11_NO_CARRY") == "1":
    _new_launch = decode.default_decode_launch

    def _old_launch(head_dim: int, block_size: int, kv_per_prog: int = 1) -> tuple[int, int, int, bool]:
        if kv_per_prog == 1 and head_dim <= 64:
            return 128, 4, 3, False
        return _new_launch(head_dim, block_size, kv_per_prog)

    decode.default_decode_launch = _old_launch

sys.exit(main(["bench", "decode", *sys.argv[1:]]))
