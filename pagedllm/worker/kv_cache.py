"""The physical KV pool on the device: one tensor per layer, sized from a byte budget."""

from __future__ import annotations

import torch

from pagedllm.model.config import ModelArchConfig


def kv_cache_bytes_per_block(cfg: ModelArchConfig, block_size: int, dtype: torch.dtype) -> int:
    """K and V of every layer for one block of tokens."""
    element_size = torch.empty((), dtype=dtype).element_size()
    return 2 * cfg.num_hidden_layers * block_size * cfg.num_key_value_heads * cfg.head_dim * element_size


def num_blocks_for_budget(
    cfg: ModelArchConfig, block_size: int, dtype: torch.dtype, budget_bytes: int
) -> int:
    return budget_bytes // kv_cache_bytes_per_block(cfg, block_size, dtype)


def allocate_kv_caches(
    cfg: ModelArchConfig,
    num_blocks: int,
    block_size: int,
    dtype: torch.dtype,
    device: torch.device,
    pin_memory: bool = False,
) -> list[torch.Tensor]:
    """One ``[2, num_blocks, block_size, num_kv_heads, head_dim]`` tensor per layer (``new_kv_cache``).

    ``pin_memory``: page-locked host memory (the swap space beside a CUDA cache: one DMA per swap).
    """
    return [
        new_kv_cache(num_blocks, block_size, cfg.num_key_value_heads, cfg.head_dim, dtype, device, pin_memory)
        for _ in range(cfg.num_hidden_layers)
    ]


def new_kv_cache(
    num_blocks: int,
    block_size: int,
    num_kv_heads: int,
    head_dim: int,
    dtype: torch.dtype,
    device: torch.device | str,
    pin_memory: bool = False,
    head_major: bool | None = None,
) -> torch.Tensor:
    """One layer's cache: a ``[2, num_blocks, block_size, num_kv_heads, head_dim]`` view whose memory is
    laid out head-major, ``[2, num_blocks, num_kv_heads, block_size, head_dim]``, on CUDA and token-major
    (the view's own order) elsewhere; ``head_major`` overrides the choice.

    Every consumer indexes (K or V, block, token, KV head, dim) and reads the strides, so the storage
    order is this function's choice alone. Head-major makes one KV head's share of a block one piece of
    ``block_size * head_dim`` elements, where the token-major order scatters it in ``block_size`` pieces a
    token row (every KV head) apart. Decode attention reads one KV head per program: on an H100 that was
    up to 3.5% faster alone where a program reads one narrow head in short tiles (the Llama-3.2-1B
    layout, the Qwen2.5-0.5B layout) and equal elsewhere; it took 1.2% off the 1B's 64-row decode step
    and added 0.7% to Qwen3-0.6B's (``benchmarks/results/session24/``, docs/PERFORMANCE.md "Session 24").
    On the CPU the reference backend gathers whole token rows, and head-major made it transpose while
    gathering: 15-30% slower per call (docs/PERFORMANCE.md "Session 25"), so the CPU keeps token-major.
    A CPU swap space beside a CUDA cache is token-major too: ``swap_blocks`` copies between any two
    orders, and the transposing half of the copy runs on the GPU.

    NOTE: ``torch.empty``, not zeros: attention reads only slots that this step or an earlier one wrote,
    and the reference/kernel tests poison caches to prove it.
    """
    if head_major is None:
        head_major = stores_head_major(torch.device(device))
    inner = (num_kv_heads, block_size) if head_major else (block_size, num_kv_heads)
    storage = torch.empty(
        (2, num_blocks, *inner, head_dim), dtype=dtype, device=device, pin_memory=pin_memory
    )
    return storage.transpose(2, 3) if head_major else storage


def stores_head_major(device: torch.device) -> bool:
    """``new_kv_cache``'s default storage order for a cache on ``device``."""
    return device.type == "cuda"
