"""Reads a GGUF file as a Hugging Face checkpoint: an HF config dict and float32 tensors under HF names.

GGUF (llama.cpp's format) stores the config as ``{arch}.*`` metadata keys and the weights under
llama.cpp's names (``blk.{i}.attn_q.weight``), most of them block-quantized. We translate both so the
model code only ever sees the Hugging Face layout, and dequantize one tensor at a time, on demand: the
file is memory-mapped, so only the tensor being yielded is ever resident as float32.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch

_GGUF_MAGIC = b"GGUF"

# GGUF architecture -> (HF architecture, HF model_type). "llama" also covers Mistral-style files.
_ARCHITECTURES = {
    "llama": ("LlamaForCausalLM", "llama"),
    "qwen2": ("Qwen2ForCausalLM", "qwen2"),
    "qwen3": ("Qwen3ForCausalLM", "qwen3"),
}

_Q = gguf.GGMLQuantizationType
# The types gguf.quants can dequantize with exact numpy code that we have checked against transformers.
SUPPORTED_TENSOR_TYPES = frozenset(
    {_Q.F32, _Q.F16, _Q.BF16, _Q.Q4_0, _Q.Q4_1, _Q.Q5_0, _Q.Q5_1, _Q.Q8_0}
    | {_Q.Q2_K, _Q.Q3_K, _Q.Q4_K, _Q.Q5_K, _Q.Q6_K}
)

_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_output.bias": "self_attn.o_proj.bias",  # a Llama with attention_bias: all four projections
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_LAYER_PATTERN = re.compile(r"blk\.(\d+)\.(.+)")
# llama.cpp reorders the rows (weights and biases) of these projections in "llama" files only;
# its qwen converters leave them in HF order.
_ROTARY_HEAD_COUNTS = {"attn_q": "num_attention_heads", "attn_k": "num_key_value_heads"}


@dataclass(frozen=True, slots=True)
class GGUFCheckpoint:
    """One opened GGUF file. Tensors stay in the memory map until ``iter_tensors`` asks for them."""

    path: Path
    hf_config: dict[str, Any]
    # Every ``tokenizer.*`` metadata key, as plain Python values; ``Tokenizer.from_gguf_metadata`` reads it.
    tokenizer_metadata: dict[str, Any]
    _reader: gguf.GGUFReader = field(repr=False)

    @property
    def tensor_names(self) -> list[str]:
        """The Hugging Face names ``iter_tensors`` yields, in file order."""
        return [hf_tensor_name(tensor.name) for tensor in self._reader.tensors]

    def iter_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Yields ``(hf_name, float32 tensor in HF shape)``, dequantizing each tensor only when reached."""
        for tensor in self._reader.tensors:
            yield hf_tensor_name(tensor.name), self._dequantize(tensor)

    def _dequantize(self, tensor: gguf.ReaderTensor) -> torch.Tensor:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        if tensor.tensor_type == gguf.GGMLQuantizationType.F32:
            # NOTE: F32 comes back as a read-only view of the memory map; copy so callers own it.
            values = values.copy()
        # GGUF lists dimensions innermost first; HF shapes are outermost first.
        hf_shape = tuple(int(dim) for dim in reversed(tensor.shape.tolist()))
        weight = torch.from_numpy(values.reshape(hf_shape))
        projection = tensor.name.split(".")[-2]  # "blk.0.attn_q.weight" -> "attn_q"
        if self.hf_config["model_type"] == "llama" and projection in _ROTARY_HEAD_COUNTS:
            weight = unpermute_rotary_rows(weight, self.hf_config[_ROTARY_HEAD_COUNTS[projection]])
        return weight


def unpermute_rotary_rows(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Undoes llama.cpp's reordering of q/k projection rows for its interleaved rotary embedding.

    HF rotates dimension ``i`` of a head with dimension ``i + head_dim/2``; llama.cpp rotates adjacent
    pairs, so its converter stores each head's rows as ``(0, h, 1, h+1, ...)`` with ``h = head_dim/2``.
    """
    # weight: [num_heads * head_dim, hidden_size], or [num_heads * head_dim] for a bias
    rest = weight.shape[1:]
    half = weight.shape[0] // num_heads // 2
    return weight.reshape(num_heads, half, 2, *rest).transpose(1, 2).reshape(weight.shape).contiguous()


def hf_tensor_name(gguf_name: str) -> str:
    """The Hugging Face name of a llama.cpp tensor name; ValueError for a tensor we cannot load."""
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    match = _LAYER_PATTERN.fullmatch(gguf_name)
    if match is not None and match.group(2) in _LAYER_NAMES:
        return f"model.layers.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}"
    if gguf_name == "rope_freqs.weight":
        raise ValueError(
            "GGUF tensor 'rope_freqs.weight' (llama.cpp's encoding of Llama 3.1-style rope scaling) is not "
            "supported: load the Hugging Face checkpoint instead"
        )
    raise ValueError(f"unsupported GGUF tensor {gguf_name!r}: no Hugging Face equivalent is known")


def open_gguf(path: str | Path) -> tuple[gguf.GGUFReader, dict[str, Any]]:
    """Memory-maps a GGUF file and returns its reader and all its metadata as Python values.

    Raises FileNotFoundError for a missing file and ValueError (naming the path and the cause) for a
    file that is not GGUF, or is truncated or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a GGUF file: it is a directory or special file")
    with path.open("rb") as file:
        magic = file.read(len(_GGUF_MAGIC))
    if magic != _GGUF_MAGIC:
        raise ValueError(f"{path} is not a GGUF file: it starts with {magic!r}, not {_GGUF_MAGIC!r}")
    try:
        reader = gguf.GGUFReader(path)
        metadata = {name: _field_value(value) for name, value in reader.fields.items()}
    # NOTE: GGUFReader reports a short or garbled file through whatever numpy raises on the bad
    # offsets (ValueError, IndexError, ...), so every such error means "unreadable" here.
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable GGUF file (truncated or corrupt?): {error}") from error
    return reader, metadata


def read_gguf(path: str | Path) -> GGUFCheckpoint:
    """Opens a GGUF checkpoint of a supported architecture and checks every tensor can be loaded."""
    reader, metadata = open_gguf(path)
    architecture = metadata.get("general.architecture")
    if architecture not in _ARCHITECTURES:
        raise ValueError(
            f"{path}: unsupported GGUF architecture {architecture!r}; supported: {sorted(_ARCHITECTURES)}"
        )
    for tensor in reader.tensors:
        hf_tensor_name(tensor.name)  # raises for a tensor we would have to drop
        if tensor.tensor_type not in SUPPORTED_TENSOR_TYPES:
            raise ValueError(
                f"{path}: tensor {tensor.name!r} has unsupported GGUF quantization type "
                f"{tensor.tensor_type.name}; supported: {sorted(t.name for t in SUPPORTED_TENSOR_TYPES)}"
            )
    tensor_shapes = {tensor.name: [int(dim) for dim in tensor.shape] for tensor in reader.tensors}
    try:
        hf_config = build_hf_config(metadata, tensor_shapes)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return GGUFCheckpoint(
        path=Path(path),
        hf_config=hf_config,
        tokenizer_metadata={name: value for name, value in metadata.items() if name.startswith("tokenizer.")},
        _reader=reader,
    )


def build_hf_config(metadata: dict[str, Any], tensor_shapes: dict[str, list[int]]) -> dict[str, Any]:
    """A Hugging Face ``config.json`` dict for a llama / qwen2 / qwen3 GGUF file.

    ``tensor_shapes`` maps GGUF tensor names to GGUF dimensions (innermost first).
    """
    architecture = metadata["general.architecture"]
    hf_architecture, model_type = _ARCHITECTURES[architecture]

    def key(name: str) -> Any:
        full_name = f"{architecture}.{name}"
        if full_name not in metadata:
            raise ValueError(f"GGUF file of architecture {architecture!r} lacks metadata key {full_name!r}")
        return metadata[full_name]

    if "token_embd.weight" not in tensor_shapes:
        raise ValueError("GGUF file has no 'token_embd.weight' tensor: it holds no complete model")
    hidden_size = key("embedding_length")
    num_heads = key("attention.head_count")
    config: dict[str, Any] = {
        "architectures": [hf_architecture],
        "model_type": model_type,
        "hidden_size": hidden_size,
        "intermediate_size": key("feed_forward_length"),
        "num_hidden_layers": key("block_count"),
        "num_attention_heads": num_heads,
        # NOTE: an absent kv head count means plain multi-head attention in llama.cpp.
        "num_key_value_heads": metadata.get(f"{architecture}.attention.head_count_kv", num_heads),
        # Qwen3 heads are wider than hidden_size / num_heads; the file then states key_length.
        "head_dim": metadata.get(f"{architecture}.attention.key_length", hidden_size // num_heads),
        # The embedding's row count is the vocabulary the weights were trained for.
        "vocab_size": tensor_shapes["token_embd.weight"][1],
        "max_position_embeddings": key("context_length"),
        "rms_norm_eps": key("attention.layer_norm_rms_epsilon"),
        "rope_theta": metadata.get(f"{architecture}.rope.freq_base", 10000.0),
        "hidden_act": "silu",
        "attention_bias": "blk.0.attn_q.bias" in tensor_shapes,
        "mlp_bias": False,
        # llama.cpp writes output.weight only when the LM head is not the embedding matrix.
        "tie_word_embeddings": "output.weight" not in tensor_shapes,
        "bos_token_id": metadata.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": metadata.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": metadata.get("tokenizer.ggml.padding_token_id"),
    }
    rope_scaling = _rope_scaling(metadata, architecture)
    if rope_scaling is not None:
        config["rope_scaling"] = rope_scaling
    return config


def _rope_scaling(metadata: dict[str, Any], architecture: str) -> dict[str, Any] | None:
    prefix = f"{architecture}.rope.scaling"
    scaling_type = metadata.get(f"{prefix}.type")
    if scaling_type in (None, "none"):
        return None
    if scaling_type not in ("linear", "yarn"):
        raise ValueError(f"unsupported GGUF rope scaling type {scaling_type!r}; supported: linear, yarn")
    scaling: dict[str, Any] = {"rope_type": scaling_type, "factor": metadata[f"{prefix}.factor"]}
    original = metadata.get(f"{prefix}.original_context_length")
    if original is not None:
        scaling["original_max_position_embeddings"] = original
    return scaling


def _field_value(reader_field: gguf.ReaderField) -> Any:
    value = reader_field.contents()
    if reader_field.types == [gguf.GGUFValueType.FLOAT32]:
        # NOTE: the file stores float32; np.float32's shortest repr turns 9.99999974e-06 back into 1e-05.
        return float(str(np.float32(value)))
    return value
