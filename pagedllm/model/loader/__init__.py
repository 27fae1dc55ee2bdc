"""From checkpoints (safetensors, GGUF) or configs (dummy weights) to loaded models."""

from pagedllm.model.loader.dummy import initialize_dummy_weights
from pagedllm.model.loader.model_loader import LOAD_FORMATS, load_model
from pagedllm.model.loader.safetensors_loader import find_safetensors_files, iter_safetensors

__all__ = [
    "LOAD_FORMATS",
    "find_safetensors_files",
    "initialize_dummy_weights",
    "iter_safetensors",
    "load_model",
]
