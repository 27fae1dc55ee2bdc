"""Loading Hugging Face checkpoint tensors into a model by name, fused projections included."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from pagedllm.model.layers.weight_loader import ShardId, get_weight_loader

# fused module name -> the checkpoint module names it is built from, each with its shard id
PackedModules = Mapping[str, tuple[tuple[str, ShardId], ...]]


def load_checkpoint_weights(
    model: nn.Module,
    weights: Iterable[tuple[str, torch.Tensor]],
    packed_modules: PackedModules,
    should_skip: Callable[[str], bool],
) -> None:
    """Loads every parameter of ``model`` from ``weights`` (Hugging Face names).

    Raises ``ValueError`` naming the tensor for an unexpected tensor, a shape mismatch, or (after the
    last tensor) every checkpoint tensor the model needed but did not get.
    """
    params = dict(model.named_parameters())  # NOTE: a tied LM head appears once, as the embedding
    to_fused = {part: (fused, shard) for fused, parts in packed_modules.items() for part, shard in parts}
    loaded: set[tuple[str, ShardId | None]] = set()
    for name, tensor in weights:
        if should_skip(name):
            continue
        param_name, shard_id = _to_param_name(name, to_fused)
        param = params.get(param_name)
        if param is None:
            raise ValueError(
                f"unexpected tensor {name!r} (shape {tuple(tensor.shape)}) in the checkpoint: "
                f"{type(model).__name__} has no parameter {param_name!r}"
            )
        try:
            get_weight_loader(param)(param, tensor, shard_id)
        except ValueError as e:
            raise ValueError(f"cannot load checkpoint tensor {name!r}: {e}") from e
        loaded.add((param_name, shard_id))

    missing = [
        _to_checkpoint_name(param_name, shard_id, packed_modules)
        for param_name, shard_id in _expected_keys(params, packed_modules)
        if (param_name, shard_id) not in loaded
    ]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise ValueError(
            f"the checkpoint lacks {len(missing)} tensor(s) {type(model).__name__} needs: {shown}{more}"
        )


def _to_param_name(name: str, to_fused: Mapping[str, tuple[str, ShardId]]) -> tuple[str, ShardId | None]:
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part in to_fused:
            fused, shard = to_fused[part]
            return ".".join([*parts[:i], fused, *parts[i + 1 :]]), shard
    return name, None


def _expected_keys(
    params: Mapping[str, nn.Parameter], packed_modules: PackedModules
) -> list[tuple[str, ShardId | None]]:
    keys: list[tuple[str, ShardId | None]] = []
    for param_name in params:
        fused = next((p for p in param_name.split(".") if p in packed_modules), None)
        if fused is None:
            keys.append((param_name, None))
        else:
            keys.extend((param_name, shard) for _, shard in packed_modules[fused])
    return keys


def _to_checkpoint_name(param_name: str, shard_id: ShardId | None, packed_modules: PackedModules) -> str:
    if shard_id is None:
        return param_name
    parts = param_name.split(".")
    for i, part in enumerate(parts):
        for checkpoint_part, shard in packed_modules.get(part, ()):
            if shard == shard_id:
                return ".".join([*parts[:i], checkpoint_part, *parts[i + 1 :]])
    return f"{param_name}[{shard_id}]"
