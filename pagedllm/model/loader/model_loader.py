"""``load_model``: from a checkpoint (a Hugging Face directory or a GGUF file) or a config to a model."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pagedllm.model.config import ModelArchConfig
from pagedllm.model.loader.dummy import initialize_dummy_weights
from pagedllm.model.loader.safetensors_loader import iter_safetensors
from pagedllm.model.models.registry import get_model_class

LOAD_FORMATS = ("auto", "safetensors", "gguf", "dummy")
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

ModelSource = str | os.PathLike[str] | dict[str, Any]
Weights = Iterator[tuple[str, torch.Tensor]]


def load_model(
    source: ModelSource,
    *,
    dtype: torch.dtype,
    device: torch.device,
    load_format: str = "auto",
    seed: int = 0,
) -> tuple[nn.Module, ModelArchConfig]:
    """Builds the model ``source`` describes on ``device`` in ``dtype`` and loads its weights.

    ``source`` is a Hugging Face model directory (``config.json`` + safetensors), a ``.gguf`` file, or,
    with ``load_format="dummy"`` (random weights from ``seed``), also a ``config.json`` path or a config
    dict. Returns the model in eval mode, without gradients, and its parsed config.
    """
    if load_format not in LOAD_FORMATS:
        raise ValueError(f"load_format={load_format!r} is not one of {', '.join(LOAD_FORMATS)}")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(
            f"dtype={dtype} is not supported; supported: {', '.join(map(str, SUPPORTED_DTYPES))}"
        )
    hf_config, weights = _resolve(source, load_format)
    cfg = ModelArchConfig.from_hf_dict(hf_config)
    model_class = get_model_class(list(cfg.architectures))
    device = torch.device(device)
    # Parameters are created where and as they will live: no float32 CPU copy of a large model first.
    with torch.device(device), _default_dtype(dtype):
        model = model_class(cfg)
    with torch.no_grad():
        if weights is None:
            initialize_dummy_weights(model, seed=seed)
        else:
            model.load_weights(weights)  # type: ignore[operator]
    model.eval().requires_grad_(False)
    return model, cfg


def _resolve(source: ModelSource, load_format: str) -> tuple[dict[str, Any], Weights | None]:
    """The HF config dict and the weights to load (``None`` = dummy) that ``source`` names."""
    is_dummy = load_format == "dummy"
    if isinstance(source, dict):
        if not is_dummy:
            raise ValueError("a config dict carries no weights: pass load_format='dummy' for random weights")
        return source, None
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if path.is_file() and path.suffix.lower() == ".gguf":
        if load_format not in ("auto", "gguf", "dummy"):
            raise ValueError(f"load_format={load_format!r} cannot read the GGUF file {path}")
        # NOTE: imported here so the safetensors path works without the gguf package's reader.
        from pagedllm.model.loader.gguf_loader import read_gguf

        gguf = read_gguf(path)
        return gguf.hf_config, None if is_dummy else gguf.iter_tensors()
    if path.is_file() and path.name.endswith(".json"):
        if not is_dummy:
            raise ValueError(
                f"{path} is a config without weights: pass load_format='dummy' for random weights"
            )
        return _read_config(path), None
    if path.is_dir():
        if load_format == "gguf":
            raise ValueError(f"load_format='gguf' needs a .gguf file, got the directory {path}")
        config_path = path / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"model directory {path} has no config.json")
        hf_config = _with_generation_eos(_read_config(config_path), path / "generation_config.json")
        return hf_config, None if is_dummy else iter_safetensors(path)
    raise ValueError(
        f"cannot load a model from {path}: expected a model directory, a .gguf file or a config.json"
    )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def _with_generation_eos(config: dict[str, Any], generation_config_path: Path) -> dict[str, Any]:
    """``config`` with the end-of-generation ids of ``generation_config.json`` (where it has any) before
    its own: checkpoints such as Llama-3-Instruct and Qwen2.5-Instruct list their turn-ending tokens
    only there, and transformers' ``generate`` stops on them."""
    if not generation_config_path.is_file():
        return config
    eos = _read_config(generation_config_path).get("eos_token_id")
    if eos is None:
        return config
    ids: list[Any] = []
    for value in (eos, config.get("eos_token_id")):
        ids.extend(value if isinstance(value, list) else [] if value is None else [value])
    unique: list[Any] = []  # NOTE: a bad id (a string, a list) is named by the config's parser
    for token_id in ids:
        if token_id not in unique:
            unique.append(token_id)
    return {**config, "eos_token_id": unique}


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
