"""Tensor-parallel rank and size for the model layers, and the collectives they need.

NOTE: one worker process per GPU joins ``torch.distributed``; its whole world is the tensor-parallel
group. Without an initialized process group (tests, single-GPU runs) the size is 1 and every
collective is a no-op.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def get_tp_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_tp_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sums ``x`` over the tensor-parallel group in place and returns it."""
    if get_tp_size() > 1:
        dist.all_reduce(x)
    return x


def all_gather_last_dim(x: torch.Tensor) -> torch.Tensor:
    """Concatenates every rank's ``x`` along its last dimension (rank order)."""
    tp_size = get_tp_size()
    if tp_size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(tp_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=-1)


def divide(numerator: int, denominator: int, what: str) -> int:
    if numerator % denominator:
        raise ValueError(f"{what}={numerator} is not divisible by the tensor-parallel size {denominator}")
    return numerator // denominator
