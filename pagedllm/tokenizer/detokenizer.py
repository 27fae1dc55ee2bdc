"""Streams generated token ids out as text, a few characters at a time, without re-decoding the sequence.

Decoding token by token is wrong in two ways: a multi-byte character (an emoji, CJK) may span several
byte-level tokens, each of which decodes alone to U+FFFD; and some decoders change how a token reads
by what precedes it (SentencePiece drops the leading space of the first token decoded). So each step
decodes a short window twice, ``ids[prefix_offset:read_offset]`` (text already emitted) and
``ids[prefix_offset:]``, and emits the difference; the window then slides forward. Each step decodes
O(1) tokens, however long the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

from pagedllm.tokenizer.tokenizer import Tokenizer

# How many prompt tokens to decode as context in front of the first generated token.
_NUM_CONTEXT_TOKENS = 5
_REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Turns a stream of generated ids into text deltas whose concatenation is the decoded output.

    NOTE: a delta is held back while the window ends in U+FFFD: the bytes so far are an incomplete
    UTF-8 character that the next token may complete. Call ``flush`` when the sequence ends to emit
    what is still held (as U+FFFD, exactly what ``decode`` of the whole output gives).
    """

    def __init__(
        self, tokenizer: Tokenizer, prompt_token_ids: Sequence[int], skip_special_tokens: bool = True
    ):
        self._tokenizer = tokenizer
        self._skip_special_tokens = skip_special_tokens
        # Only the prompt's tail matters: it is the context the first output token is decoded after.
        start = max(0, len(prompt_token_ids) - _NUM_CONTEXT_TOKENS)
        # NOTE: not in the middle of a character: a byte-fallback decoder (Llama-2's, Mistral's) turns a
        # whole run of byte tokens that opens mid-character into U+FFFD, the output's whole characters
        # after it included. A character is at most 4 bytes, so at most 3 tokens back.
        earliest = max(0, start - 3)
        while start > earliest and _opens_mid_character(
            tokenizer, prompt_token_ids[start:], skip_special_tokens
        ):
            start -= 1
        context = list(prompt_token_ids[start:])
        self._token_ids = context  # [context..., output...]; the front is trimmed as the window slides
        self._prefix_offset = 0  # start of the decode window
        self._read_offset = len(context)  # everything before this has been emitted
        self._output_text_parts: list[str] = []

    @property
    def output_text(self) -> str:
        """All text emitted so far (held-back bytes excluded)."""
        if len(self._output_text_parts) > 1:
            self._output_text_parts = ["".join(self._output_text_parts)]
        return self._output_text_parts[0] if self._output_text_parts else ""

    def append(self, new_token_ids: Sequence[int]) -> str:
        """Adds generated ids; returns the text they finalize ("" while a character is incomplete)."""
        delta_parts = []
        for token_id in new_token_ids:
            self._token_ids.append(token_id)
            delta_parts.append(self._advance(final=False))
        return self._emit("".join(delta_parts))

    def flush(self) -> str:
        """Emits whatever is held back (an incomplete character, as U+FFFD); call when the sequence ends."""
        return self._emit(self._advance(final=True))

    def _advance(self, final: bool) -> str:
        if self._read_offset == len(self._token_ids):
            return ""
        window = self._token_ids[self._prefix_offset :]
        num_emitted = self._read_offset - self._prefix_offset
        emitted_text = self._decode(window[:num_emitted])
        window_text = self._decode(window)
        if not final and window_text.endswith(_REPLACEMENT_CHAR):
            return ""
        # NOTE: both decodes start at the same token, so whatever the decoder does to a window's first
        # token (SentencePiece drops its leading space; a byte-level window may open mid-character)
        # happens to both alike: the emitted text is a prefix of the longer decode, the delta its tail.
        num_emitted_chars = len(emitted_text)
        if not window_text.startswith(emitted_text):
            # The emitted text ended in U+FFFD that the new ids turned into a character: a prompt cut
            # mid-character (the only way emitted text ends incomplete: output text is held back until
            # its characters are whole). The character is output's, as vLLM's DecodeStream gives it;
            # sliced at the old length it was dropped from both.
            stem = emitted_text.rstrip(_REPLACEMENT_CHAR)
            if window_text.startswith(stem):
                num_emitted_chars = len(stem)
        delta = window_text[num_emitted_chars:]
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._token_ids)
        # Drop ids that left the window so memory stays O(window), not O(sequence).
        del self._token_ids[: self._prefix_offset]
        self._read_offset -= self._prefix_offset
        self._prefix_offset = 0
        return delta

    def _decode(self, token_ids: list[int]) -> str:
        return self._tokenizer.decode(token_ids, skip_special_tokens=self._skip_special_tokens)

    def _emit(self, delta: str) -> str:
        if delta:
            self._output_text_parts.append(delta)
        return delta


def _opens_mid_character(tokenizer: Tokenizer, token_ids: Sequence[int], skip_special_tokens: bool) -> bool:
    """Whether ``token_ids`` decode to text that opens with U+FFFD: they start inside a character."""
    text = tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)
    return text.startswith(_REPLACEMENT_CHAR)
