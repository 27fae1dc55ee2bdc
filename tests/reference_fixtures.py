"""Session-scoped fixtures for the GGUF loader and tokenizer tests: the real SmolLM2 GGUF file, read by
us and by Hugging Face transformers (the independent oracle).

A test module binds the fixtures it uses as module attributes (``smollm_tokenizer =
reference_fixtures.smollm_tokenizer``), where pytest finds them. They depend on no other fixture, so
binding one is enough.

NOTE: pytest keeps one cache per module that binds a fixture, so the objects themselves are cached
here: reading the GGUF costs seconds and every module shares the one copy.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from pagedllm.model.default_model import default_model_path
from pagedllm.model.loader.gguf_loader import GGUFCheckpoint, read_gguf
from pagedllm.tokenizer.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def smollm_gguf_path() -> Path:
    return default_model_path()


@pytest.fixture(scope="session")
def smollm_checkpoint() -> GGUFCheckpoint:
    return _smollm_checkpoint()


@pytest.fixture(scope="session")
def smollm_tokenizer() -> Tokenizer:
    return _smollm_tokenizer()


@pytest.fixture(scope="session")
def hf_smollm_tokenizer() -> Any:
    """transformers' tokenizer rebuilt from the same GGUF (~6 s)."""
    return _hf_smollm_tokenizer()


@pytest.fixture(scope="session")
def hf_smollm_model() -> Any:
    """transformers' float32 model dequantized from the same GGUF (~20 s)."""
    return _hf_smollm_model()


@cache
def _smollm_checkpoint() -> GGUFCheckpoint:
    return read_gguf(default_model_path())


@cache
def _smollm_tokenizer() -> Tokenizer:
    # Reuses the checkpoint's metadata rather than reading the file a second time.
    return Tokenizer.from_gguf_metadata(_smollm_checkpoint().tokenizer_metadata)


@cache
def _hf_smollm_tokenizer() -> Any:
    from transformers import AutoTokenizer

    path = default_model_path()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@cache
def _hf_smollm_model() -> Any:
    from transformers import AutoModelForCausalLM

    path = default_model_path()
    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
