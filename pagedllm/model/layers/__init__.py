"""Building blocks shared by the model architectures."""

from pagedllm.model.layers.activation import SiluAndMul
from pagedllm.model.layers.layernorm import RMSNorm
from pagedllm.model.layers.linear import (
    ColumnParallelLinear,
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)
from pagedllm.model.layers.rotary import RotaryEmbedding, compute_inv_freq
from pagedllm.model.layers.vocab_embedding import ParallelLMHead, VocabParallelEmbedding
from pagedllm.model.layers.weight_loader import default_weight_loader, get_weight_loader

__all__ = [
    "ColumnParallelLinear",
    "MergedColumnParallelLinear",
    "ParallelLMHead",
    "QKVParallelLinear",
    "RMSNorm",
    "RotaryEmbedding",
    "RowParallelLinear",
    "SiluAndMul",
    "VocabParallelEmbedding",
    "compute_inv_freq",
    "default_weight_loader",
    "get_weight_loader",
]
