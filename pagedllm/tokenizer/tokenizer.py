"""The engine's tokenizer: a ``tokenizers.Tokenizer`` plus the special ids and chat template it lacks.

Loads from a GGUF file (the vocabulary in its metadata) or a Hugging Face model directory
(``tokenizer.json``); ``load_tokenizer`` picks by path. The API follows Hugging Face's tokenizers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from tokenizers import Tokenizer as BackendTokenizer

from pagedllm.model.loader.gguf_loader import open_gguf
from pagedllm.tokenizer.chat_template import render_chat_template
from pagedllm.tokenizer.gguf_tokenizer import build_gguf_tokenizer
from pagedllm.tokenizer.pretrained_tokenizer import TOKENIZER_FILE, read_pretrained_tokenizer
from pagedllm.tokenizer.tokenizer_parts import TokenizerParts


class Tokenizer:
    def __init__(
        self,
        backend: BackendTokenizer,
        *,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        chat_template: str | None = None,
    ) -> None:
        self._backend = backend
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.chat_template = chat_template
        added = backend.get_added_tokens_decoder()
        self.all_special_ids: list[int] = sorted(
            token_id for token_id, token in added.items() if token.special
        )

    @classmethod
    def from_parts(cls, parts: TokenizerParts) -> Tokenizer:
        return cls(
            parts.backend,
            bos_token_id=parts.bos_token_id,
            eos_token_id=parts.eos_token_id,
            chat_template=parts.chat_template,
        )

    @classmethod
    def from_gguf(cls, path: str | Path) -> Tokenizer:
        """The tokenizer in a GGUF file's metadata; FileNotFoundError / ValueError like ``read_gguf``."""
        _, metadata = open_gguf(path)
        return cls.from_gguf_metadata(metadata)

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping[str, Any]) -> Tokenizer:
        """From already-read GGUF metadata, e.g. ``GGUFCheckpoint.tokenizer_metadata`` (saves re-reading)."""
        return cls.from_parts(build_gguf_tokenizer(metadata))

    @classmethod
    def from_pretrained_dir(cls, path: str | Path) -> Tokenizer:
        """From a Hugging Face model directory; FileNotFoundError when it has no ``tokenizer.json``."""
        return cls.from_parts(read_pretrained_tokenizer(Path(path)))

    @property
    def backend(self) -> BackendTokenizer:
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Number of token ids this tokenizer can produce, added tokens included."""
        return int(self._backend.get_vocab_size(with_added_tokens=True))

    @property
    def bos_token(self) -> str | None:
        return None if self.bos_token_id is None else self._backend.id_to_token(self.bos_token_id)

    @property
    def eos_token(self) -> str | None:
        return None if self.eos_token_id is None else self._backend.id_to_token(self.eos_token_id)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``. Special tokens written in the text (``<|im_start|>``) map to their id;
        ``add_special_tokens`` only controls the BOS/EOS the model adds around every sequence."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            # NOTE: JSON can carry a lone surrogate ("\ud800"); the tokenizer would fail with a TypeError.
            raise ValueError(
                f"text is not valid Unicode: {text[e.start : e.end]!r} at index {e.start} is a lone surrogate"
            ) from None
        # NOTE: encode_batch, not encode: it releases the GIL, so a server can tokenize a long prompt in
        # a worker thread while its event loop goes on (encode holds the GIL for all of it).
        (encoding,) = self._backend.encode_batch([text], add_special_tokens=add_special_tokens)
        return list(encoding.ids)

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return str(self._backend.decode(list(token_ids), skip_special_tokens=skip_special_tokens))

    @overload
    def convert_ids_to_tokens(self, token_ids: int) -> str | None: ...
    @overload
    def convert_ids_to_tokens(self, token_ids: Sequence[int]) -> list[str | None]: ...
    def convert_ids_to_tokens(self, token_ids: int | Sequence[int]) -> str | list[str | None] | None:
        """The vocabulary strings of ids (byte-level spelled, e.g. ``"ĠParis"``); None for an unknown id."""
        if isinstance(token_ids, int):
            return self._backend.id_to_token(token_ids)
        return [self._backend.id_to_token(token_id) for token_id in token_ids]

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        **template_kwargs: Any,
    ) -> str:
        """The prompt text for a conversation, as HF's ``apply_chat_template(..., tokenize=False)``."""
        if self.chat_template is None:
            raise ValueError("this model has no chat template: pass a plain prompt instead of messages")
        return render_chat_template(
            self.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            special_tokens={"bos_token": self.bos_token, "eos_token": self.eos_token},
            **template_kwargs,
        )

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, bos_token={self.bos_token!r}, "
            f"eos_token={self.eos_token!r}, has_chat_template={self.chat_template is not None})"
        )


def load_tokenizer(path: str | Path) -> Tokenizer | None:
    """The tokenizer for a model path: a ``.gguf`` file, or a Hugging Face directory.

    Returns None for a directory without ``tokenizer.json`` (the caller then runs without text I/O);
    FileNotFoundError for a path that does not exist, ValueError for any other kind of file.
    """
    path = Path(path)
    if path.is_dir():
        return Tokenizer.from_pretrained_dir(path) if (path / TOKENIZER_FILE).is_file() else None
    if path.suffix.lower() == ".gguf" or (path.is_file() and _starts_with_gguf_magic(path)):
        return Tokenizer.from_gguf(path)
    if not path.exists():
        raise FileNotFoundError(f"model path not found: {path}")
    raise ValueError(f"cannot load a tokenizer from {path}: expected a .gguf file or a model directory")


def _starts_with_gguf_magic(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == b"GGUF"
