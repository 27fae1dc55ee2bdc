"""Tensors of a Hugging Face model directory: ``model.safetensors`` or shards listed in an index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def find_safetensors_files(model_dir: Path) -> list[Path]:
    """The checkpoint files of ``model_dir``, in load order; ``FileNotFoundError`` if there are none."""
    index_path = model_dir / INDEX_FILE
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{index_path} is not a safetensors index (no weight_map): {e}") from e
        files = [model_dir / name for name in sorted(set(weight_map.values()))]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{index_path} lists shard(s) that do not exist: {', '.join(missing)}")
        return files
    if (model_dir / SINGLE_FILE).is_file():
        return [model_dir / SINGLE_FILE]
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors files in {model_dir}")
    return files


def iter_safetensors(model_dir: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Yields ``(name, tensor)`` for every tensor of the checkpoint, one file open at a time, on the CPU.

    A file that is not valid safetensors raises ``ValueError`` naming it.
    """
    for path in find_safetensors_files(model_dir):
        yield from _iter_file(path)


def _iter_file(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 (a safe_open handle is not iterable)
                tensor = f.get_tensor(name)
                yield name, tensor
    except SafetensorError as e:
        raise ValueError(f"corrupt safetensors file {path}: {e}") from e
