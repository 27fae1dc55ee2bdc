"""Model architectures, registered by their Hugging Face ``architectures`` name."""

from pagedllm.model.models.llama import LlamaForCausalLM
from pagedllm.model.models.qwen2 import Qwen2ForCausalLM
from pagedllm.model.models.qwen3 import Qwen3ForCausalLM
from pagedllm.model.models.registry import get_model_class, supported_architectures

__all__ = [
    "LlamaForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "get_model_class",
    "supported_architectures",
]
