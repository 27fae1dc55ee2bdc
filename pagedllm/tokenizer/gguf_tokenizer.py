"""Builds a byte-level BPE ``tokenizers.Tokenizer`` from the ``tokenizer.ggml.*`` metadata of a GGUF file.

A GGUF file carries no ``tokenizer.json``: it stores the vocabulary, merges and token types, plus a
``pre`` name that llama.cpp maps to a pre-tokenizer regex. We rebuild the same pipeline with the
``tokenizers`` library: split the text the way the merges were learned, map bytes to the GPT-2 printable
alphabet, apply the merges, and add control tokens (``<|im_end|>``) as special tokens matched whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import gguf
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as BackendTokenizer

from pagedllm.tokenizer.tokenizer_parts import TokenizerParts, special_token_template

# Regexes llama.cpp and the original tokenizer.json files split text with before BPE.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2's differs from Llama 3's only in taking digits one at a time.
_QWEN2_SPLIT = _LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")

# Not regexes: GPT-2's own regex (built into ByteLevel), alone or after splitting off every \p{N}.
_GPT2_SPLIT = "<gpt2>"
_DIGITS_THEN_GPT2_SPLIT = "<digits, then gpt2>"

# llama.cpp ``tokenizer.ggml.pre`` name -> how text is split before byte-level BPE.
_PRE_TOKENIZER_SPLITS: dict[str, str] = {
    **dict.fromkeys(["default", "gpt-2", "gpt2", "olmo", "phi-2"], _GPT2_SPLIT),
    **dict.fromkeys(
        ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"],
        _DIGITS_THEN_GPT2_SPLIT,
    ),
    **dict.fromkeys(["llama3", "llama-bpe", "llama-v3", "smaug-bpe", "falcon3", "dbrx"], _LLAMA3_SPLIT),
    **dict.fromkeys(["qwen2", "deepseek-r1-qwen", "megrez"], _QWEN2_SPLIT),
}
# Tokenizers trained tiktoken-style look a whole pre-token up in the vocabulary before merging.
_IGNORE_MERGES = frozenset(["llama3", "llama-bpe", "llama-v3", "smaug-bpe", "falcon3", "dbrx"])


def build_gguf_tokenizer(metadata: Mapping[str, Any]) -> TokenizerParts:
    """Builds the tokenizer a GGUF file describes, from its ``tokenizer.*`` metadata keys."""
    model_type = metadata.get("tokenizer.ggml.model")
    if model_type != "gpt2":
        raise ValueError(
            f"unsupported GGUF tokenizer model {model_type!r}: only byte-level BPE ('gpt2') is supported; "
            "load the model from a Hugging Face directory with a tokenizer.json instead"
        )
    # NOTE: llama.cpp reads a file with no ``pre`` key as the GPT-2 split, with a warning.
    pre_type = metadata.get("tokenizer.ggml.pre", "default")
    if pre_type not in _PRE_TOKENIZER_SPLITS:
        raise ValueError(
            f"unsupported GGUF pre-tokenizer {pre_type!r}; supported: {sorted(_PRE_TOKENIZER_SPLITS)}"
        )
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    default_types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    token_types: list[int] = metadata.get("tokenizer.ggml.token_type") or default_types
    if len(token_types) != len(tokens):
        raise ValueError(f"GGUF tokenizer has {len(tokens)} tokens but {len(token_types)} token types")

    backend = BackendTokenizer(
        models.BPE(
            vocab=_byte_level_vocab(tokens, token_types),
            merges=_parse_merges(metadata.get("tokenizer.ggml.merges", [])),
            ignore_merges=pre_type in _IGNORE_MERGES,
        )
    )
    backend.pre_tokenizer = _pre_tokenizer(_PRE_TOKENIZER_SPLITS[pre_type])
    backend.decoder = decoders.ByteLevel()
    # NOTE: llama.cpp matches control and user-defined tokens whole, anywhere in the text; only
    # control tokens count as special (dropped by decode(skip_special_tokens=True)).
    backend.add_special_tokens(_added_tokens(tokens, token_types, gguf.TokenType.CONTROL, special=True))
    backend.add_tokens(_added_tokens(tokens, token_types, gguf.TokenType.USER_DEFINED, special=False))

    bos_token_id = _token_id(metadata, "bos", len(tokens))
    eos_token_id = _token_id(metadata, "eos", len(tokens))
    add_bos = bool(metadata.get("tokenizer.ggml.add_bos_token", False)) and bos_token_id is not None
    add_eos = bool(metadata.get("tokenizer.ggml.add_eos_token", False)) and eos_token_id is not None
    backend.post_processor = special_token_template(
        backend, bos_token_id if add_bos else None, eos_token_id if add_eos else None
    )
    return TokenizerParts(
        backend=backend,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        chat_template=metadata.get("tokenizer.chat_template"),
    )


def _pre_tokenizer(split: str) -> pre_tokenizers.PreTokenizer:
    if split == _GPT2_SPLIT:
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if split == _DIGITS_THEN_GPT2_SPLIT:
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _byte_level_vocab(tokens: Sequence[str], token_types: Sequence[int]) -> dict[str, int]:
    """Token string -> id, with every ordinary token spelled in the byte-level alphabet BPE works in."""
    alphabet = frozenset(byte_to_unicode().values())
    spelling = byte_to_unicode()
    vocab: dict[str, int] = {}
    for token_id, (token, token_type) in enumerate(zip(tokens, token_types, strict=True)):
        # NOTE: some converters store a token as raw text ("  " rather than "ĠĠ"). Ordinary tokens are
        # respelled so BPE can reach them; added tokens keep their text, which is what the added
        # vocabulary matches and looks up.
        is_added = token_type in (gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED)
        if not is_added and not set(token) <= alphabet:
            token = "".join(spelling[byte] for byte in token.encode("utf-8"))
        # The first id wins when a file repeats a token (padding tokens often share one name).
        vocab.setdefault(token, token_id)
    return vocab


def _parse_merges(merges: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for merge in merges:
        parts = merge.split(" ")
        if len(parts) != 2:
            raise ValueError(f"GGUF tokenizer merge {merge!r} is not two tokens separated by one space")
        pairs.append((parts[0], parts[1]))
    return pairs


def _added_tokens(
    tokens: Sequence[str], token_types: Sequence[int], wanted: gguf.TokenType, special: bool
) -> list[AddedToken]:
    return [
        AddedToken(token, special=special, normalized=False)
        for token, token_type in zip(tokens, token_types, strict=True)
        if token_type == wanted
    ]


def _token_id(metadata: Mapping[str, Any], name: str, num_tokens: int) -> int | None:
    token_id = metadata.get(f"tokenizer.ggml.{name}_token_id")
    if token_id is not None and not 0 <= token_id < num_tokens:
        raise ValueError(f"GGUF {name} token id {token_id} is outside the vocabulary [0, {num_tokens})")
    return None if token_id is None else int(token_id)


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map that byte-level BPE vocabularies are written in.

    Printable Latin-1 bytes stand for themselves; the rest (controls, space, ...) are given the
    characters from U+0100 upward, in byte order, so that every token is a visible string.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {byte: chr(byte) for byte in printable}
    others = (byte for byte in range(256) if byte not in mapping)
    mapping.update({byte: chr(256 + index) for index, byte in enumerate(others)})
    return mapping
