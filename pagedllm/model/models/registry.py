"""Model classes by their Hugging Face ``architectures`` name."""

from __future__ import annotations

from torch import nn

from pagedllm.model.models.llama import LlamaForCausalLM
from pagedllm.model.models.qwen2 import Qwen2ForCausalLM
from pagedllm.model.models.qwen3 import Qwen3ForCausalLM

_MODELS: dict[str, type[nn.Module]] = {
    "LlamaForCausalLM": LlamaForCausalLM,
    # Mistral's dense models are Llama's architecture under another name.
    "MistralForCausalLM": LlamaForCausalLM,
    "Qwen2ForCausalLM": Qwen2ForCausalLM,
    "Qwen3ForCausalLM": Qwen3ForCausalLM,
}


def supported_architectures() -> list[str]:
    return sorted(_MODELS)


def get_model_class(architectures: list[str] | tuple[str, ...]) -> type[nn.Module]:
    """The class for the first supported name in ``architectures``."""
    for name in architectures:
        if name in _MODELS:
            return _MODELS[name]
    raise ValueError(
        f"unsupported model architecture(s) {list(architectures)}; "
        f"supported: {', '.join(supported_architectures())}"
    )
