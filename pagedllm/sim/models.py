"""Model shapes for KV arithmetic: a Hugging Face ``config.json`` or a known name, and byte sizes.

Known names are the published configs in the project's ``../shared/models/`` (next to the repository)
and the copies shipped in ``pagedllm/sim/model_configs/`` so that an installed package works alone.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pagedllm.model.config import ModelArchConfig, kv_bytes_per_token

# <repo>/pagedllm/sim/models.py -> <repo>/../shared/models
SHARED_MODELS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "models"
PACKAGED_MODELS_DIR = Path(__file__).resolve().parent / "model_configs"

DTYPE_BYTES = {
    "float32": 4,
    "fp32": 4,
    "float": 4,
    "bfloat16": 2,
    "bf16": 2,
    "float16": 2,
    "fp16": 2,
    "half": 2,
}
_CANONICAL_DTYPE = {
    "fp32": "float32",
    "float": "float32",
    "bf16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
}
GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    source: str  # the file the config was read from
    arch: ModelArchConfig


def known_model_names() -> list[str]:
    names = {p.stem for d in (SHARED_MODELS_DIR, PACKAGED_MODELS_DIR) if d.is_dir() for p in d.glob("*.json")}
    return sorted(names)


def load_model_spec(name_or_path: str) -> ModelSpec:
    """A ``config.json`` path (or a directory holding one), a ``.gguf`` file, or a known model name like
    ``llama-2-7b``."""
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        # NOTE: imported here: reading the metadata needs the gguf package, the JSON paths do not.
        from pagedllm.model.loader.gguf_loader import read_gguf

        arch = ModelArchConfig.from_hf_dict(read_gguf(path).hf_config)
        return ModelSpec(name=path.stem, source=str(path), arch=arch)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        stem = name_or_path.lower().removesuffix(".json")
        candidates = [d / f"{stem}.json" for d in (SHARED_MODELS_DIR, PACKAGED_MODELS_DIR)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ValueError(
                f"model {name_or_path!r} is neither a config.json path nor a known name; known: "
                f"{', '.join(known_model_names())}"
            )
        path = found
    try:
        with open(path, encoding="utf-8") as f:
            hf_config: dict[str, Any] = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a JSON config ({e})") from None
    name = path.parent.name if path.name == "config.json" else path.stem
    return ModelSpec(name=name, source=str(path), arch=ModelArchConfig.from_hf_dict(hf_config))


def resolve_dtype(dtype: str, arch: ModelArchConfig) -> tuple[str, int]:
    """(canonical name, bytes per element); ``auto`` is the checkpoint's dtype, else float16."""
    if dtype == "auto":
        dtype = arch.dtype if arch.dtype in DTYPE_BYTES else "float16"
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype={dtype!r} is not supported; choose auto or one of {sorted(DTYPE_BYTES)}")
    return _CANONICAL_DTYPE.get(dtype, dtype), DTYPE_BYTES[dtype]


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(?:([kmgt])(i?))?b?\s*$", re.IGNORECASE)


def parse_memory_size(text: str) -> int:
    """Bytes from ``16GiB``, ``512MiB``, ``2.5GB``, ``1e9`` or a plain integer (KiB/MiB/GiB are powers
    of 1024, kB/MB/GB powers of 1000)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"memory size {text!r} is not a number with an optional unit like 16GiB or 500MB")
    number, prefix, binary = float(match.group(1)), (match.group(2) or "").lower(), match.group(3)
    power = "kmgt".index(prefix) + 1 if prefix else 0
    size = number * (1024 if binary else 1000) ** power
    if not math.isfinite(size):
        raise ValueError(f"memory size {text!r} is too large")
    num_bytes = int(size)
    if num_bytes < 1:
        raise ValueError(f"memory size {text!r} is less than one byte")
    return num_bytes


def format_bytes(num_bytes: float) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.4g} {unit}"
    return f"{num_bytes:.0f} B"


@dataclass(frozen=True, slots=True)
class KVSize:
    """What one token, one block and one GiB of KV cache amount to for a model and dtype."""

    model: str
    dtype: str
    dtype_bytes: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    block_size: int
    bytes_per_token: int
    bytes_per_block: int
    tokens_per_gib: int  # whole tokens
    blocks_per_gib: int
    max_position_embeddings: int
    bytes_per_max_len_sequence: int  # one sequence of max_position_embeddings tokens

    def as_dict(self) -> dict[str, int | str]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def kv_size(spec: ModelSpec, dtype: str = "auto", block_size: int = 16) -> KVSize:
    dtype_name, dtype_bytes = resolve_dtype(dtype, spec.arch)
    per_token = kv_bytes_per_token(spec.arch, dtype_bytes)
    return KVSize(
        model=spec.name,
        dtype=dtype_name,
        dtype_bytes=dtype_bytes,
        num_layers=spec.arch.num_hidden_layers,
        num_kv_heads=spec.arch.num_key_value_heads,
        head_dim=spec.arch.head_dim,
        block_size=block_size,
        bytes_per_token=per_token,
        bytes_per_block=per_token * block_size,
        tokens_per_gib=GIB // per_token,
        blocks_per_gib=GIB // (per_token * block_size),
        max_position_embeddings=spec.arch.max_position_embeddings,
        bytes_per_max_len_sequence=per_token * spec.arch.max_position_embeddings,
    )


def num_blocks_for_memory(memory_bytes: int, bytes_per_block: int) -> int:
    num_blocks = memory_bytes // bytes_per_block
    if num_blocks < 1:
        raise ValueError(f"{format_bytes(memory_bytes)} is less than one KV block ({bytes_per_block} bytes)")
    return num_blocks
