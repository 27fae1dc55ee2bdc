"""pagedllm: LLM inference and serving on a paged KV cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pagedllm.beam_search import BeamSearchOutput, BeamSearchParams, BeamSearchSequence
    from pagedllm.llm import LLM
    from pagedllm.outputs import CompletionOutput, Logprob, RequestOutput
    from pagedllm.sampling_params import SamplingParams

__all__ = [
    "LLM",
    "BeamSearchOutput",
    "BeamSearchParams",
    "BeamSearchSequence",
    "CompletionOutput",
    "Logprob",
    "RequestOutput",
    "SamplingParams",
]
__version__ = "0.1.0"

# NOTE: imported lazily so that `import pagedllm.core` (the pure-Python scheduler the simulator runs on)
# does not drag in torch and the model code.
_EXPORTS = {
    "LLM": "pagedllm.llm",
    "BeamSearchOutput": "pagedllm.beam_search",
    "BeamSearchParams": "pagedllm.beam_search",
    "BeamSearchSequence": "pagedllm.beam_search",
    "CompletionOutput": "pagedllm.outputs",
    "Logprob": "pagedllm.outputs",
    "RequestOutput": "pagedllm.outputs",
    "SamplingParams": "pagedllm.sampling_params",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pagedllm' has no attribute {name!r}")
