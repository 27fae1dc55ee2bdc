"""IncrementalDetokenizer: streamed deltas always add up to ``decode`` of the whole output, hold back
incomplete UTF-8 characters, and cost O(1) decoded tokens per appended token."""

from __future__ import annotations

import random

import pytest
import reference_fixtures

from pagedllm.tokenizer.detokenizer import IncrementalDetokenizer
from pagedllm.tokenizer.tokenizer import Tokenizer

smollm_tokenizer = reference_fixtures.smollm_tokenizer

SOURCE_TEXT = (
    "Héllo wörld! The café serves crème brûlée. 中文字符测试，日本語のテキスト、한국어. "
    "Emoji: 🎉🚀 👨‍👩‍👧‍👦 🇫🇷 ❤️ 👍🏽\n\ndef f(x):\n    return x ** 2  # 12345\n"
    "<|im_start|>assistant\nSure!<|im_end|>  trailing   spaces"
)
PROMPT = "<|im_start|>user\nSay something.<|im_end|>\n<|im_start|>assistant\n"


def stream(detokenizer: IncrementalDetokenizer, token_ids: list[int], rng: random.Random) -> list[str]:
    """Feeds ``token_ids`` in random chunks of 1-3, as a scheduler would, and returns the deltas."""
    deltas, index = [], 0
    while index < len(token_ids):
        chunk = rng.randint(1, 3)
        deltas.append(detokenizer.append(token_ids[index : index + chunk]))
        index += chunk
    return deltas


@pytest.mark.parametrize("skip_special_tokens", [True, False])
def test_deltas_of_real_text_concatenate_to_decode(
    smollm_tokenizer: Tokenizer, skip_special_tokens: bool
) -> None:
    rng = random.Random(0)
    source_ids = smollm_tokenizer.encode(SOURCE_TEXT)
    prompt_ids = smollm_tokenizer.encode(PROMPT)
    for _ in range(50):
        start = rng.randrange(len(source_ids))  # may start mid-character: decode gives U+FFFD there too
        output_ids = source_ids[start : start + rng.randint(1, 60)]
        detokenizer = IncrementalDetokenizer(smollm_tokenizer, prompt_ids, skip_special_tokens)
        deltas = stream(detokenizer, output_ids, rng)
        deltas.append(detokenizer.flush())
        expected = smollm_tokenizer.decode(output_ids, skip_special_tokens=skip_special_tokens)
        assert "".join(deltas) == expected == detokenizer.output_text, output_ids


@pytest.mark.parametrize("skip_special_tokens", [True, False])
def test_deltas_of_random_token_soup_concatenate_to_decode(
    smollm_tokenizer: Tokenizer, skip_special_tokens: bool
) -> None:
    # Tokens drawn at random make invalid and unfinished UTF-8 sequences: the hard case for holding back.
    rng = random.Random(1)
    vocabulary = smollm_tokenizer.encode(SOURCE_TEXT)
    for _ in range(100):
        output_ids = [rng.choice(vocabulary) for _ in range(rng.randint(0, 40))]
        detokenizer = IncrementalDetokenizer(smollm_tokenizer, [], skip_special_tokens)
        deltas = [*stream(detokenizer, output_ids, rng), detokenizer.flush()]
        assert "".join(deltas) == smollm_tokenizer.decode(output_ids, skip_special_tokens=skip_special_tokens)


def test_text_is_final_without_flush_when_output_ends_on_a_whole_character(
    smollm_tokenizer: Tokenizer,
) -> None:
    output_ids = smollm_tokenizer.encode(" Paris, 巴黎 🎉!")
    detokenizer = IncrementalDetokenizer(smollm_tokenizer, smollm_tokenizer.encode("The capital is"), True)
    for token_id in output_ids:
        detokenizer.append([token_id])
    assert detokenizer.output_text == " Paris, 巴黎 🎉!"
    assert detokenizer.flush() == ""


def test_multibyte_character_is_held_until_its_last_token(smollm_tokenizer: Tokenizer) -> None:
    emoji_ids = smollm_tokenizer.encode("🎉")
    assert len(emoji_ids) > 1  # byte-level BPE spells this emoji with several tokens
    detokenizer = IncrementalDetokenizer(smollm_tokenizer, [], True)
    assert [detokenizer.append([token_id]) for token_id in emoji_ids] == [""] * (len(emoji_ids) - 1) + ["🎉"]


def test_flush_emits_an_unfinished_character_as_replacement(smollm_tokenizer: Tokenizer) -> None:
    first_byte_id = smollm_tokenizer.encode("🎉")[0]
    detokenizer = IncrementalDetokenizer(smollm_tokenizer, [], True)
    assert detokenizer.append([first_byte_id]) == ""
    assert detokenizer.flush() == smollm_tokenizer.decode([first_byte_id]) == "\ufffd"


@pytest.mark.parametrize("text", ["月亮的诗", "Dog: 🐶🐱 ok", "한국어 텍스트"])
def test_a_character_the_prompt_leaves_unfinished_is_output_by_the_token_that_finishes_it(
    smollm_tokenizer: Tokenizer, text: str
) -> None:
    """A prompt cut mid-character (a generation stopped at max_tokens fed back as the next prompt) decodes
    to U+FFFD there; the output token that completes the character outputs it, and nothing is lost."""
    ids = smollm_tokenizer.encode(text)
    cuts = [cut for cut in range(1, len(ids)) if smollm_tokenizer.decode(ids[:cut]).endswith("\ufffd")]
    assert cuts, "the text must have a multi-byte character spelled with several tokens"
    for cut in cuts:
        prompt_text = smollm_tokenizer.decode(ids[:cut])
        detokenizer = IncrementalDetokenizer(smollm_tokenizer, ids[:cut], True)
        output = "".join(detokenizer.append([token_id]) for token_id in ids[cut:]) + detokenizer.flush()
        assert prompt_text.rstrip("\ufffd") + output == text, (cut, prompt_text, output)


def test_first_token_keeps_its_leading_space(smollm_tokenizer: Tokenizer) -> None:
    prompt_ids = smollm_tokenizer.encode("The capital of France is")
    detokenizer = IncrementalDetokenizer(smollm_tokenizer, prompt_ids, True)
    assert detokenizer.append(smollm_tokenizer.encode(" Paris")) == " Paris"
    assert detokenizer.append(smollm_tokenizer.encode(".")) == "."


@pytest.mark.parametrize(("skip_special_tokens", "expected"), [(True, "Paris."), (False, "Paris.<|im_end|>")])
def test_special_tokens_follow_skip_special_tokens(
    smollm_tokenizer: Tokenizer, skip_special_tokens: bool, expected: str
) -> None:
    detokenizer = IncrementalDetokenizer(
        smollm_tokenizer, smollm_tokenizer.encode(PROMPT), skip_special_tokens
    )
    deltas = [detokenizer.append([token_id]) for token_id in smollm_tokenizer.encode("Paris.<|im_end|>")]
    assert "".join(deltas) == detokenizer.output_text == expected


def test_each_append_decodes_a_bounded_window(
    smollm_tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    output_ids = smollm_tokenizer.encode(SOURCE_TEXT * 20)  # ~2,000 tokens
    decoded_lengths: list[int] = []
    real_decode = smollm_tokenizer.decode

    def counting_decode(token_ids: list[int], skip_special_tokens: bool = True) -> str:
        decoded_lengths.append(len(token_ids))
        return real_decode(token_ids, skip_special_tokens)

    monkeypatch.setattr(smollm_tokenizer, "decode", counting_decode)
    detokenizer = IncrementalDetokenizer(smollm_tokenizer, [], True)
    for token_id in output_ids:
        detokenizer.append([token_id])
    # A window spans the last emitted step plus the tokens of one unfinished character (<= 4 bytes).
    assert max(decoded_lengths) <= 8
    monkeypatch.undo()
    assert detokenizer.output_text == smollm_tokenizer.decode(output_ids)
