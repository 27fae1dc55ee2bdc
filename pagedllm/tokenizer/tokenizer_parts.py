"""What every tokenizer source (a GGUF file, a Hugging Face directory) hands to ``Tokenizer``, and the
BOS/EOS post-processor both may need to build."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer as BackendTokenizer
from tokenizers import processors


@dataclass(frozen=True, slots=True)
class TokenizerParts:
    """The encoding pipeline plus the facts it does not hold; ids are None when the source names none."""

    backend: BackendTokenizer
    bos_token_id: int | None
    eos_token_id: int | None
    chat_template: str | None


def special_token_template(
    backend: BackendTokenizer, bos_token_id: int | None, eos_token_id: int | None
) -> processors.TemplateProcessing:
    """A post-processor that wraps each encoded sequence in BOS and/or EOS (None: leave that end bare)."""
    specials = [
        (backend.id_to_token(token_id), token_id)
        for token_id in (bos_token_id, eos_token_id)
        if token_id is not None
    ]
    bos = [specials[0][0]] if bos_token_id is not None else []
    eos = [specials[-1][0]] if eos_token_id is not None else []
    return processors.TemplateProcessing(
        single=[*bos, "$A", *eos],
        pair=[*bos, "$A", *eos, *bos, "$B:1", *eos],
        special_tokens=list(dict.fromkeys(specials)),
    )
