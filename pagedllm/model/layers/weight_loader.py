"""How checkpoint tensors land in parameters: every parameter carries a ``weight_loader``.

Loading stays generic this way: the model maps a checkpoint name to a parameter (and, for fused
projections, a shard id), and the parameter's own loader knows which slice of it that tensor fills and
which slice of the tensor this tensor-parallel rank keeps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ShardId = str | int
WeightLoader = Callable[[nn.Parameter, torch.Tensor, ShardId | None], None]


def set_weight_loader(param: nn.Parameter, loader: WeightLoader) -> None:
    param.weight_loader = loader  # type: ignore[attr-defined]


def get_weight_loader(param: nn.Parameter) -> WeightLoader:
    loader: WeightLoader = getattr(param, "weight_loader", default_weight_loader)
    return loader


def default_weight_loader(param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None) -> None:
    """Copies a whole tensor into an unsharded parameter (casting dtype, moving device)."""
    if shard_id is not None:
        raise ValueError(f"shard_id={shard_id!r} given for an unfused parameter")
    _check_shape(loaded, tuple(param.shape))
    param.data.copy_(loaded)


def copy_shard(
    param: nn.Parameter,
    loaded: torch.Tensor,
    *,
    dim: int,
    full_size: int,
    src_start: int,
    dst_start: int,
    size: int,
) -> None:
    """Copies ``loaded[src_start : src_start + size]`` along ``dim`` into ``param[dst_start : ...]``.

    ``loaded`` is the whole checkpoint tensor: ``full_size`` along ``dim``, the parameter's size on every
    other dimension.
    """
    expected = list(param.shape)
    expected[dim] = full_size
    _check_shape(loaded, tuple(expected))
    param.data.narrow(dim, dst_start, size).copy_(loaded.narrow(dim, src_start, size))


def _check_shape(loaded: torch.Tensor, expected: tuple[int, ...]) -> None:
    if tuple(loaded.shape) != expected:
        raise ValueError(f"shape mismatch: checkpoint has {tuple(loaded.shape)}, model expects {expected}")
