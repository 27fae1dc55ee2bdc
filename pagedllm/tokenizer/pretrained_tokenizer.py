"""Reads the tokenizer of a Hugging Face model directory: ``tokenizer.json`` plus the config files around it.

``tokenizer.json`` holds the whole encoding pipeline. What it lacks lives elsewhere: which tokens are
BOS/EOS and whether to add them (``tokenizer_config.json``), the chat template (``chat_template.jinja``,
or the ``chat_template`` key of ``tokenizer_config.json`` in older checkpoints), and the ids that end
generation (``generation_config.json``, else ``config.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as BackendTokenizer

from pagedllm.tokenizer.tokenizer_parts import TokenizerParts

TOKENIZER_FILE = "tokenizer.json"


def read_pretrained_tokenizer(directory: Path) -> TokenizerParts:
    """Reads the tokenizer files of ``directory``; FileNotFoundError when it has no ``tokenizer.json``."""
    tokenizer_file = directory / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{directory} has no {TOKENIZER_FILE}: it holds no Hugging Face tokenizer")
    try:
        backend = BackendTokenizer.from_file(str(tokenizer_file))
    except Exception as error:  # tokenizers raises a bare Exception for a malformed file
        raise ValueError(f"{tokenizer_file} is not a valid tokenizer.json: {error}") from error
    config = _read_json(directory / "tokenizer_config.json")
    # Older checkpoints name their special tokens only in special_tokens_map.json; tokenizer_config.json
    # wins where it names one (null included).
    special_tokens = {**_read_json(directory / "special_tokens_map.json"), **config}

    bos_token_id = _special_token_id(backend, special_tokens.get("bos_token"), "bos_token", directory)
    eos_token_id = _special_token_id(backend, special_tokens.get("eos_token"), "eos_token", directory)
    if eos_token_id is None:
        eos_token_id = _model_eos_token_id(directory)
    # NOTE: tokenizer.json's post-processor decides which special tokens encode adds; add_bos_token and
    # add_eos_token in tokenizer_config.json are ignored, as transformers >= 5 ignores them beside a
    # tokenizer.json (honouring them gave prompts transformers does not build).
    return TokenizerParts(
        backend=backend,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        chat_template=_chat_template(directory, config),
    )


def _special_token_id(
    backend: BackendTokenizer, token: str | dict[str, Any] | None, name: str, directory: Path
) -> int | None:
    # tokenizer_config.json writes a special token either as its text or as a serialized AddedToken.
    content = token.get("content") if isinstance(token, dict) else token
    if content is None:
        return None
    token_id = backend.token_to_id(content)
    if token_id is None:
        raise ValueError(f"{directory}: {name} {content!r} is not in the vocabulary")
    return int(token_id)


def _model_eos_token_id(directory: Path) -> int | None:
    for file_name in ("generation_config.json", "config.json"):
        eos = _read_json(directory / file_name).get("eos_token_id")
        # NOTE: Llama 3 style configs list several ids; the first is the tokenizer's own EOS.
        if isinstance(eos, list):
            eos = eos[0] if eos else None
        if isinstance(eos, int):
            return eos
    return None


def _chat_template(directory: Path, config: dict[str, Any]) -> str | None:
    template_file = directory / "chat_template.jinja"
    if template_file.is_file():
        return template_file.read_text(encoding="utf-8")
    template = config.get("chat_template")
    # Some checkpoints ship several named templates; the one named "default" is for plain chat.
    if isinstance(template, list):
        named = {entry.get("name"): entry.get("template") for entry in template if isinstance(entry, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object, got {type(data).__name__}")
    return data
