"""Greedy continuations of SmolLM2-135M-Instruct by Hugging Face transformers, the independent oracle.

Loading the reference takes ~30 s, so its outputs are cached on disk, keyed by the prompts, the token
count and the transformers version; a fresh clone computes them once per test session.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pagedllm.model.default_model import default_model_path

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "reference"

_LONG_STORY = (
    "The lighthouse keeper had kept the lamp burning for forty years. Every evening he climbed the "
    "spiral stairs, one hundred and twelve of them, counted each step aloud, and polished the great "
    "lens until it shone like a second moon. Ships passed in the night and never knew his name. "
)

# Ten varied prompts: plain text, a question, code, numbers, non-ASCII text, a chat-formatted prompt,
# and one of over 500 tokens.
REFERENCE_PROMPTS = [
    "The capital of France is",
    "Write a haiku about the ocean.",
    "def fibonacci(n):\n    ",
    "Q: What is 17 multiplied by 23?\nA:",
    "List three primary colors:\n1.",
    "Les fleurs du jardin sont",
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a land far away,",
    "The three laws of thermodynamics state that",
    _LONG_STORY * 9 + "Summarize the story above in one sentence:",
]


def _cache_path(prompts: list[str], max_new_tokens: int, version: str, kind: str = "greedy") -> Path:
    key = hashlib.sha256(json.dumps([prompts, max_new_tokens, version]).encode()).hexdigest()[:16]
    return CACHE_DIR / f"smollm2-{kind}-{key}.json"


def _load_or_compute(path: Path, compute: Callable[[], Any]) -> Any:
    """The cached reference at ``path``, or ``compute()`` it once and cache it there."""
    if path.is_file():
        return json.loads(path.read_text())
    results = compute()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return results


@functools.cache
def _reference_model() -> tuple[Any, Any]:
    """transformers' own GGUF loader: dequantized to float32, tokenizer from the same file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    return tokenizer, model


def reference_greedy(prompts: list[str], max_new_tokens: int) -> list[dict[str, list[int]]]:
    """[{"prompt_token_ids": [...], "output_token_ids": [...]}] per prompt, each generated alone."""
    import transformers

    path = _cache_path(prompts, max_new_tokens, transformers.__version__)
    return _load_or_compute(path, lambda: _greedy(prompts, max_new_tokens))


def _greedy(prompts: list[str], max_new_tokens: int) -> list[dict[str, list[int]]]:
    import torch

    tokenizer, model = _reference_model()
    results = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,  # ignore EOS: compare all tokens
                do_sample=False,
                pad_token_id=tokenizer.eos_token_id,
            )
            results.append(
                {"prompt_token_ids": ids[0].tolist(), "output_token_ids": out[0, ids.shape[1] :].tolist()}
            )
    return results


def reference_beam_search(
    prompts: list[str], max_new_tokens: int, beam_width: int, length_penalty: float
) -> list[dict[str, Any]]:
    """transformers' beam search, per prompt alone: ``{"prompt_token_ids", "sequences": [output ids with
    the EOS that ended them], "scores": [length-normalized score]}``, best first as ``generate`` ranks them.
    """
    import transformers

    key_prompts = [*prompts, f"beam={beam_width}", f"length_penalty={length_penalty}"]
    path = _cache_path(key_prompts, max_new_tokens, transformers.__version__, kind="beam")
    return _load_or_compute(path, lambda: _beam_search(prompts, max_new_tokens, beam_width, length_penalty))


def _beam_search(
    prompts: list[str], max_new_tokens: int, beam_width: int, length_penalty: float
) -> list[dict[str, Any]]:
    import torch

    tokenizer, model = _reference_model()
    eos_ids = model.generation_config.eos_token_id
    eos_ids = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids or ())
    results = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                num_beams=beam_width,
                num_return_sequences=beam_width,
                do_sample=False,
                length_penalty=length_penalty,
                early_stopping=False,
                pad_token_id=tokenizer.eos_token_id,
                return_dict_in_generate=True,
                output_scores=True,
            )
            sequences = []
            for row in out.sequences[:, ids.shape[1] :].tolist():
                # Finished beams are padded with EOS after their own EOS: keep up to the first one.
                end = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
                sequences.append(row[:end])
            results.append(
                {
                    "prompt_token_ids": ids[0].tolist(),
                    "sequences": sequences,
                    "scores": out.sequences_scores.tolist(),
                    "eos_token_ids": sorted(eos_ids),
                }
            )
    return results
