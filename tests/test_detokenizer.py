"""IncrementalDetokenizer: streamed deltas always add up to ``decode`` of the whole output, hold back
incomplete UTF-8 characters, and cost O(1) decoded tokens per appended token."""

from __future__ import annotations

import json
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


def byte_fallback_tokenizer() -> Tokenizer:
    """A small SentencePiece-style BPE with byte fallback, as Llama-2's and Mistral's tokenizer.json are:
    a character outside its vocabulary is spelled as <0xNN> byte tokens, and the decoder turns a run of
    them that is not valid UTF-8 into U+FFFD, one per byte."""
    from tokenizers import Tokenizer as BackendTokenizer
    from tokenizers import decoders, models, normalizers, trainers

    backend = BackendTokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False)
    backend.train_from_iterator(["Hello world, the quick brown fox jumps over the lazy dog."] * 20, trainer)
    # The byte tokens are ordinary vocabulary, as in Llama-2's tokenizer.json, not skippable special ones.
    data = json.loads(backend.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if not t["content"].startswith("<0x")]
    return Tokenizer(BackendTokenizer.from_str(json.dumps(data)), eos_token_id=2)


@pytest.mark.parametrize(
    ("prompt", "output"), [("Hi 日本", "語です"), ("Hi 日本語", "のテキスト"), ("é日", "本 ok")]
)
def test_a_byte_fallback_prompt_ending_in_multibyte_characters_leaves_the_output_whole(
    prompt: str, output: str
) -> None:
    """The five-token context opened inside 日's bytes: the decoder replaced the whole byte run with
    U+FFFD, the output's characters too, and the streamed text was all U+FFFD."""
    tokenizer = byte_fallback_tokenizer()
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    output_ids = tokenizer.encode(prompt + output, add_special_tokens=False)[len(prompt_ids) :]
    # The split is at a character: the whole decodes to the prompt's text, then the output's.
    assert (
        tokenizer.decode(prompt_ids) == prompt
        and tokenizer.decode(prompt_ids + output_ids) == prompt + output
    )
    detokenizer = IncrementalDetokenizer(tokenizer, prompt_ids, True)
    text = "".join(detokenizer.append([token_id]) for token_id in output_ids) + detokenizer.flush()
    assert text == output
