"""Session 24: `pagedllm bench decode` with main's weights and KV cache laid out otherwise (every
kernel reads both through strides, so only their allocation changes):

- ``S24_PAD=P``: every linear's weight (and with ``S24_PAD_HEAD=1`` the tied embedding / LM head) in
  rows P elements longer than the weight is wide (call 1), to see whether
  ``session24_padded_weights.py``'s per-linear timings reach whole steps;
- ``S24_KV=head``: the GPU's KV cache stored head-major, ``[2, blocks, kv_heads, block_size, dim]``,
  and handed to the engine as its standard ``[2, blocks, block_size, kv_heads, dim]`` view (call 2):
  a program's K (or V) rows of one KV head are then one contiguous piece a block instead of
  ``block_size`` pieces a token row apart.

Unset: main as it is. The rest of the command line is ``pagedllm bench decode``'s. Calls 1 and 2 ran
on 39747d0, whose cache was token-major; since then the engine's own cache is head-major
(``new_kv_cache``), so ``S24_KV=head`` changes nothing on today's tree and ``S24_KV=token`` (call 4)
gives the order before.
"""

import os
import sys

import torch

from pagedllm.cli import main
from pagedllm.engine import llm_engine
from pagedllm.model.layers.linear import _ParallelLinear
from pagedllm.model.layers.vocab_embedding import VocabParallelEmbedding

PAD = int(os.environ.get("S24_PAD", "0"))
PAD_HEAD = os.environ.get("S24_PAD_HEAD") == "1"
_load_model = llm_engine.load_model


def _restride(param: torch.nn.Parameter) -> None:
    n, k = param.shape
    buf = torch.empty(n, k + PAD, dtype=param.dtype, device=param.device)
    buf[:, :k].copy_(param.data)
    param.data = buf[:, :k]


def _load_padded(*args, **kwargs):  # type: ignore[no-untyped-def]
    model, cfg = _load_model(*args, **kwargs)
    if PAD:
        count = 0
        for module in model.modules():
            if isinstance(module, _ParallelLinear) or (
                PAD_HEAD and isinstance(module, VocabParallelEmbedding)
            ):
                _restride(module.weight)
                count += 1
        torch.cuda.empty_cache()
        print(f"session24: {count} weights in rows of +{PAD} elements", flush=True)
    return model, cfg


llm_engine.load_model = _load_padded  # type: ignore[assignment]

_allocate_kv_caches = llm_engine.allocate_kv_caches
KV = os.environ.get("S24_KV")


def _allocate_ordered(cfg, num_blocks, block_size, dtype, device, pin_memory=False):  # type: ignore[no-untyped-def]
    """The GPU's cache head-major (``S24_KV=head``) or token-major (``token``), as the standard view."""
    if torch.device(device).type != "cuda":
        return _allocate_kv_caches(cfg, num_blocks, block_size, dtype, device, pin_memory)
    heads, dim = cfg.num_key_value_heads, cfg.head_dim
    if KV == "head":
        shape = (2, num_blocks, heads, block_size, dim)
        print(f"session24: KV cache head-major {shape}", flush=True)
        return [
            torch.empty(shape, dtype=dtype, device=device).transpose(2, 3)
            for _ in range(cfg.num_hidden_layers)
        ]
    shape = (2, num_blocks, block_size, heads, dim)
    print(f"session24: KV cache token-major {shape}", flush=True)
    return [torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.num_hidden_layers)]


if KV in ("head", "token"):
    llm_engine.allocate_kv_caches = _allocate_ordered  # type: ignore[assignment]

sys.exit(main(["bench", "decode", *sys.argv[1:]]))
