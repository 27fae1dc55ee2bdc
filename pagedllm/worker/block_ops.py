"""Whole-block moves: copy-on-write copies inside the cache, and swaps between GPU and (pinned) CPU.

Plain torch index ops: a gather into one contiguous buffer, then a scatter, both a single launch per
layer, and for swaps a single transfer per layer between the devices.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

BlockPairs = torch.Tensor | Sequence[tuple[int, int]]  # (src_block, dst_block) pairs; tensor [num_pairs, 2]


def copy_blocks(kv_caches: Sequence[torch.Tensor], pairs: BlockPairs) -> None:
    """``cache[:, dst] = cache[:, src]`` for every pair, in every layer's ``[2, num_blocks, ...]`` cache.

    NOTE: all sources are read before any destination is written, so a block may be both a source and
    a destination. A destination must appear at most once.
    """
    if not kv_caches:
        return
    src, dst = _split_pairs(pairs, kv_caches[0].device)
    if src.numel() == 0:
        return
    for cache in kv_caches:
        cache.index_copy_(1, dst, cache.index_select(1, src))


def swap_blocks(
    src_caches: torch.Tensor | Sequence[torch.Tensor],
    dst_caches: torch.Tensor | Sequence[torch.Tensor],
    pairs: BlockPairs,
) -> None:
    """``dst[:, d] = src[:, s]`` for every pair ``(s, d)``, layer by layer, between two devices.

    ``src_caches`` and ``dst_caches`` are one ``[2, num_blocks, block_size, heads, dim]`` tensor each or
    lists of them (one per layer); one side is usually a CUDA cache and the other a CPU cache in pinned
    memory. Returns once ``dst`` holds the blocks: a device-to-host swap waits for its copy.
    """
    srcs = [src_caches] if isinstance(src_caches, torch.Tensor) else list(src_caches)
    dsts = [dst_caches] if isinstance(dst_caches, torch.Tensor) else list(dst_caches)
    if len(srcs) != len(dsts):
        raise ValueError(f"{len(srcs)} source layers but {len(dsts)} destination layers")
    if not srcs:
        return
    src_idx, _ = _split_pairs(pairs, srcs[0].device)
    _, dst_idx = _split_pairs(pairs, dsts[0].device)
    if src_idx.numel() == 0:
        return
    for src, dst in zip(srcs, dsts, strict=True):
        if src.shape[0] != dst.shape[0] or src.shape[2:] != dst.shape[2:] or src.dtype != dst.dtype:
            raise ValueError(f"cannot swap blocks between {tuple(src.shape)} {src.dtype} and "
                             f"{tuple(dst.shape)} {dst.dtype}")  # fmt: skip
        staged = src.index_select(1, src_idx)  # [2, num_pairs, block_size, heads, dim] on src's device
        if staged.device != dst.device:
            if dst.device.type == "cpu":
                # A pinned staging buffer makes the device-to-host copy a single DMA.
                host = torch.empty(staged.shape, dtype=staged.dtype, pin_memory=dst.is_pinned())
                host.copy_(staged)
                staged = host
            else:
                if staged.device.type == "cpu" and src.is_pinned():
                    staged = staged.pin_memory()
                staged = staged.to(dst.device, non_blocking=staged.is_pinned())
        dst.index_copy_(1, dst_idx, staged)


def _split_pairs(pairs: BlockPairs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(src ids, dst ids) as int64 tensors on ``device``."""
    if isinstance(pairs, torch.Tensor):
        table = pairs.to(device=device, dtype=torch.int64)
    else:
        table = torch.tensor(list(pairs), dtype=torch.int64).reshape(-1, 2).to(device)
    if table.dim() != 2 or table.shape[1] != 2:
        raise ValueError(f"pairs must be [num_pairs, 2] (src, dst), got shape {tuple(table.shape)}")
    return table[:, 0], table[:, 1]
