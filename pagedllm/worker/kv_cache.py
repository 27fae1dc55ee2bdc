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
    """One ``[2, num_blocks, block_size, num_kv_heads, head_dim]`` tensor per layer.

    ``pin_memory``: page-locked host memory (the swap space beside a CUDA cache: one DMA per swap).

    NOTE: ``torch.empty``, not zeros: attention reads only slots that this step or an earlier one wrote,
    and the reference/kernel tests poison caches to prove it.
    """
    shape = (2, num_blocks, block_size, cfg.num_key_value_heads, cfg.head_dim)
    return [
        torch.empty(shape, dtype=dtype, device=device, pin_memory=pin_memory)
        for _ in range(cfg.num_hidden_layers)
    ]
