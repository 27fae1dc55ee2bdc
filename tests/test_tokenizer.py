"""Tokenizer: built from the GGUF's own metadata, it must tokenize like transformers' GGUF tokenizer;
loading from a Hugging Face directory, special tokens and chat templates follow transformers too."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import reference_fixtures
from tokenizers import Tokenizer as BackendTokenizer

from pagedllm.tokenizer.gguf_tokenizer import byte_to_unicode
from pagedllm.tokenizer.tokenizer import Tokenizer, load_tokenizer

# pytest finds fixtures by module attribute; these come from the shared session fixtures.
smollm_gguf_path = reference_fixtures.smollm_gguf_path
smollm_tokenizer = reference_fixtures.smollm_tokenizer
hf_smollm_tokenizer = reference_fixtures.hf_smollm_tokenizer

VARIED_TEXTS = [
    "The capital of France is",
    "",
    " ",
    "   leading spaces",
    "trailing spaces   ",
    "multiple    inner   spaces",
    "line\nbreaks\n\nand\r\nwindows\tand tabs",
    "\n\n\n",
    "Numbers 0 7 42 123 2024 3.14159 -17 1,000,000 and 12345678901234567890",
    'def add(a, b):\n    """Sum."""\n    return a + b  # trailing comment\n\nprint(f"{add(1, 2)!r}")',
    "Punctuation!!! ... ??? ;;; --- (round) [square] {curly} <angle> \"double\" 'single' `back`",
    "I'm sure they'll say it's fine, don't you think? We've SEEN it; YOU'RE right.",
    "Café naïve résumé façade Ångström Ñandú Straße",
    "中文字符测试，日本語のテキスト、한국어 텍스트",
    "Emoji: 🎉🚀 👨‍👩‍👧‍👦 🇫🇷 ❤️ 👍🏽",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>glued<|endoftext|> <file_sep>spaced",
    "<|im_start| almost special <<|im_end|>>",
    "https://example.com/a/b?q=1&r=two#frag  user@example.org",
    "nbsp\u00a0thin\u2009zero\u200bwidth",
]

# Unicode numerals other than ASCII digits (\p{N}): where transformers' GGUF conversion disagrees.
UNICODE_NUMERAL_TEXTS = ["½ cup", "x² + y³", "step ① then ②", "Ⅻ o'clock", "٣٤ and ५"]


def test_encodes_known_prompt_to_known_ids(smollm_tokenizer: Tokenizer) -> None:
    assert smollm_tokenizer.encode("The capital of France is") == [504, 3575, 282, 4649, 314]


def test_encoding_a_long_text_lets_other_threads_run(smollm_tokenizer: Tokenizer) -> None:
    # A server tokenizes a long prompt in a worker thread so that its event loop goes on; that helps
    # only if the encoder lets go of the GIL (the backend's plain encode holds it: 3 ticks in 2 s).
    text = "The quick brown fox jumps over the lazy dog. " * 30_000  # 1.35 MB
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    start = time.perf_counter()
    ids = smollm_tokenizer.encode(text)
    seconds = time.perf_counter() - start
    done.set()
    ticker.join()
    assert len(ids) > 300_000
    during = [t for t in ticks if start < t < start + seconds]
    # Held, the ticker would get in a few times (the interpreter's 5 ms switch does not preempt a C call).
    assert len(during) > 20, f"{len(during)} ticks in {seconds:.2f} s of encoding"


def test_smollm_special_ids_and_sizes(smollm_tokenizer: Tokenizer) -> None:
    assert (smollm_tokenizer.eos_token_id, smollm_tokenizer.eos_token) == (2, "<|im_end|>")
    assert (smollm_tokenizer.bos_token_id, smollm_tokenizer.bos_token) == (1, "<|im_start|>")
    assert smollm_tokenizer.vocab_size == len(smollm_tokenizer) == 49152
    # The 17 control tokens of the file (<|endoftext|> ... <empty_output>) are its special tokens.
    assert smollm_tokenizer.all_special_ids == list(range(17))


def test_no_bos_is_added_when_the_file_says_not_to(smollm_tokenizer: Tokenizer) -> None:
    assert smollm_tokenizer.encode("Hi", add_special_tokens=True) == smollm_tokenizer.encode(
        "Hi", add_special_tokens=False
    )


def test_special_tokens_in_text_encode_to_their_own_ids(smollm_tokenizer: Tokenizer) -> None:
    ids = smollm_tokenizer.encode("<|im_start|>user\nHi<|im_end|>")
    assert ids[0] == 1 and ids[-1] == 2
    assert smollm_tokenizer.convert_ids_to_tokens(ids[:2]) == ["<|im_start|>", "user"]


def test_decode_drops_special_tokens_only_when_asked(smollm_tokenizer: Tokenizer) -> None:
    ids = smollm_tokenizer.encode("<|im_start|>assistant\nParis.<|im_end|>")
    assert smollm_tokenizer.decode(ids) == "assistant\nParis."
    assert (
        smollm_tokenizer.decode(ids, skip_special_tokens=False) == "<|im_start|>assistant\nParis.<|im_end|>"
    )


def test_convert_ids_to_tokens_gives_byte_level_spelling(smollm_tokenizer: Tokenizer) -> None:
    assert smollm_tokenizer.convert_ids_to_tokens(4649) == "ĠFrance"
    assert smollm_tokenizer.convert_ids_to_tokens([504, 3575]) == ["The", "Ġcapital"]


@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_encode_and_decode_round_trip_text(smollm_tokenizer: Tokenizer, text: str) -> None:
    assert smollm_tokenizer.decode(smollm_tokenizer.encode(text), skip_special_tokens=False) == text


@pytest.mark.slow
@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_encode_matches_transformers_gguf_tokenizer(
    smollm_tokenizer: Tokenizer, hf_smollm_tokenizer: Any, text: str
) -> None:
    assert smollm_tokenizer.encode(text) == hf_smollm_tokenizer.encode(text)
    assert smollm_tokenizer.encode(text, add_special_tokens=False) == hf_smollm_tokenizer.encode(
        text, add_special_tokens=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_decode_matches_transformers_gguf_tokenizer(
    smollm_tokenizer: Tokenizer, hf_smollm_tokenizer: Any, text: str
) -> None:
    ids = hf_smollm_tokenizer.encode(text)
    for skip in (True, False):
        assert smollm_tokenizer.decode(ids, skip_special_tokens=skip) == hf_smollm_tokenizer.decode(
            ids, skip_special_tokens=skip
        )


@pytest.mark.slow
@pytest.mark.parametrize("text", UNICODE_NUMERAL_TEXTS)
def test_unicode_numerals_split_like_smollm2s_own_tokenizer_json(
    smollm_tokenizer: Tokenizer, hf_smollm_tokenizer: Any, text: str
) -> None:
    """NOTE: a deliberate difference from transformers' GGUF conversion, which ignores ``pre=smollm``.

    SmolLM2's tokenizer.json (and llama.cpp, for ``pre=smollm``) split every \\p{N} character off
    before GPT-2's regex. transformers only splits by the regex, which is the same for ASCII digits
    (the vocabulary has no digit merges) but not for "½" or "²" after a space. The oracle here is
    transformers' vocabulary and merges with the upstream tokenizer.json's pre-tokenizer.
    """
    upstream = json.loads(hf_smollm_tokenizer.backend_tokenizer.to_str())
    upstream["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ],
    }
    oracle = BackendTokenizer.from_str(json.dumps(upstream))
    assert smollm_tokenizer.encode(text) == oracle.encode(text).ids


# --- GGUF metadata variants, on a tiny vocabulary: the 256 byte symbols plus a few merges ----------


def tiny_gguf_metadata(pre: str = "default", merges: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    merged = ["".join(merge.split(" ")) for merge in merges]
    tokens = ["<s>", "</s>", *byte_to_unicode().values(), *merged, "<think>"]
    token_types = [3, 3, *[1] * (256 + len(merged)), 4]  # 3 = control, 4 = user-defined
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": token_types,
        "tokenizer.ggml.merges": list(merges),
        "tokenizer.ggml.bos_token_id": 0,
        "tokenizer.ggml.eos_token_id": 1,
        **extra,
    }


def test_add_bos_token_flag_prepends_bos_unless_special_tokens_are_off() -> None:
    tokenizer = Tokenizer.from_gguf_metadata(tiny_gguf_metadata(**{"tokenizer.ggml.add_bos_token": True}))
    plain = tokenizer.encode("hi", add_special_tokens=False)
    assert tokenizer.encode("hi") == [0, *plain]


def test_llama3_pre_tokenizer_groups_digits_in_threes() -> None:
    # "3 4" can only merge if "12345" reaches BPE as one piece; Llama 3 splits it "123" | "45".
    gpt2 = Tokenizer.from_gguf_metadata(tiny_gguf_metadata("default", merges=("3 4",)))
    llama3 = Tokenizer.from_gguf_metadata(tiny_gguf_metadata("llama-bpe", merges=("3 4",)))
    merged_id = gpt2.backend.token_to_id("34")
    assert merged_id in gpt2.encode("12345")
    assert merged_id not in llama3.encode("12345")
    assert llama3.decode(llama3.encode("12345")) == "12345"


def test_qwen2_pre_tokenizer_splits_digits_one_by_one() -> None:
    gpt2 = Tokenizer.from_gguf_metadata(tiny_gguf_metadata("default", merges=("1 2",)))
    qwen2 = Tokenizer.from_gguf_metadata(tiny_gguf_metadata("qwen2", merges=("1 2",)))
    assert len(gpt2.encode("12")) == 1
    assert len(qwen2.encode("12")) == 2


def test_user_defined_token_is_matched_whole_but_is_not_special() -> None:
    tokenizer = Tokenizer.from_gguf_metadata(tiny_gguf_metadata())
    think_id = tokenizer.backend.token_to_id("<think>")
    ids = tokenizer.encode("a<think>b")
    assert think_id in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a<think>b"
    assert think_id not in tokenizer.all_special_ids


def test_unsupported_gguf_tokenizer_model_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported GGUF tokenizer model 'llama'"):
        Tokenizer.from_gguf_metadata(tiny_gguf_metadata(**{"tokenizer.ggml.model": "llama"}))


def test_unknown_gguf_pre_tokenizer_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported GGUF pre-tokenizer 'mystery'"):
        Tokenizer.from_gguf_metadata(tiny_gguf_metadata("mystery"))


def test_from_gguf_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"absent\.gguf"):
        Tokenizer.from_gguf(tmp_path / "absent.gguf")


# --- Hugging Face model directories --------------------------------------------------------------


def write_model_dir(directory: Path, tokenizer: Tokenizer, **files: dict[str, Any] | str) -> Path:
    """A model directory with ``tokenizer``'s tokenizer.json plus the given JSON / text files."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.backend.save(str(directory / "tokenizer.json"))
    for name, content in files.items():
        file_name = name.replace("__", ".")
        text = content if isinstance(content, str) else json.dumps(content)
        (directory / file_name).write_text(text, encoding="utf-8")
    return directory


def test_pretrained_dir_reads_special_tokens_and_template_from_tokenizer_config(
    tmp_path: Path, smollm_tokenizer: Tokenizer
) -> None:
    config = {
        "bos_token": "<|im_start|>",
        "eos_token": {"content": "<|im_end|>"},
        "chat_template": "{{ 'x' }}",
    }
    directory = write_model_dir(tmp_path / "m", smollm_tokenizer, tokenizer_config__json=config)
    tokenizer = Tokenizer.from_pretrained_dir(directory)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2)
    assert tokenizer.chat_template == "{{ 'x' }}"
    assert tokenizer.encode("The capital of France is") == [504, 3575, 282, 4649, 314]


def test_chat_template_jinja_file_wins_over_tokenizer_config(
    tmp_path: Path, smollm_tokenizer: Tokenizer
) -> None:
    directory = write_model_dir(
        tmp_path / "m",
        smollm_tokenizer,
        tokenizer_config__json={"chat_template": "old"},
        chat_template__jinja="new",
    )
    assert Tokenizer.from_pretrained_dir(directory).chat_template == "new"


def test_pretrained_dir_takes_eos_from_generation_config_when_tokenizer_config_has_none(
    tmp_path: Path, smollm_tokenizer: Tokenizer
) -> None:
    directory = write_model_dir(
        tmp_path / "m",
        smollm_tokenizer,
        generation_config__json={"eos_token_id": [2, 0]},
        config__json={"eos_token_id": 0},
    )
    assert Tokenizer.from_pretrained_dir(directory).eos_token_id == 2


@pytest.mark.parametrize(
    "flags",
    [{"add_bos_token": True}, {"add_eos_token": True}, {"add_bos_token": True, "add_eos_token": True}],
)
def test_add_bos_and_eos_flags_beside_a_tokenizer_json_are_ignored_as_transformers_ignores_them(
    tmp_path: Path, smollm_tokenizer: Tokenizer, flags: dict[str, bool]
) -> None:
    """transformers >= 5 drops them where a tokenizer.json exists: its post-processor alone decides.
    Honoured, they gave prompts transformers does not build (an EOS after every prompt)."""
    transformers = pytest.importorskip("transformers")
    config = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", **flags}
    directory = write_model_dir(tmp_path / "m", smollm_tokenizer, tokenizer_config__json=config)
    theirs = transformers.AutoTokenizer.from_pretrained(str(directory))
    ours = Tokenizer.from_pretrained_dir(directory)
    for text in ("Hi", "The capital of France is"):
        assert ours.encode(text) == theirs(text)["input_ids"] == ours.encode(text, add_special_tokens=False)


TEMPLATE_WITH_BOS = (
    "{{ bos_token }}{% for m in messages %}U: {{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}A:{% endif %}"
)


@pytest.mark.parametrize(
    "files",
    [
        # A tokenizer without BOS (Qwen2's): the template's bos_token renders as nothing, not "None".
        {
            "tokenizer_config__json": {
                "bos_token": None, "eos_token": "<|im_end|>", "chat_template": TEMPLATE_WITH_BOS
            }
        },
        # Older checkpoints name their special tokens only in special_tokens_map.json (never read before).
        {
            "tokenizer_config__json": {"chat_template": TEMPLATE_WITH_BOS},
            "special_tokens_map__json": {"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}},
        },
    ],
)  # fmt: skip
def test_special_tokens_reach_the_chat_template_as_transformers_gives_them(
    tmp_path: Path, smollm_tokenizer: Tokenizer, files: dict[str, Any]
) -> None:
    transformers = pytest.importorskip("transformers")
    directory = write_model_dir(tmp_path / "m", smollm_tokenizer, **files)
    messages = [{"role": "user", "content": "Hello"}]
    theirs = transformers.AutoTokenizer.from_pretrained(str(directory))
    ours = Tokenizer.from_pretrained_dir(directory)
    assert ours.apply_chat_template(messages) == theirs.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    assert (ours.bos_token_id, ours.eos_token_id) == (theirs.bos_token_id, theirs.eos_token_id)


def test_unknown_eos_token_in_tokenizer_config_is_named(tmp_path: Path, smollm_tokenizer: Tokenizer) -> None:
    config = {"eos_token": "<|nope|>"}
    directory = write_model_dir(tmp_path / "m", smollm_tokenizer, tokenizer_config__json=config)
    with pytest.raises(ValueError, match=r"'<\|nope\|>' is not in the vocabulary"):
        Tokenizer.from_pretrained_dir(directory)


def test_load_tokenizer_dispatches_on_the_path(
    tmp_path: Path, smollm_tokenizer: Tokenizer, smollm_gguf_path: Path
) -> None:
    assert load_tokenizer(smollm_gguf_path) is not None
    assert load_tokenizer(write_model_dir(tmp_path / "hf", smollm_tokenizer)) is not None
    (tmp_path / "bare").mkdir()
    assert load_tokenizer(tmp_path / "bare") is None
    with pytest.raises(FileNotFoundError, match=r"no tokenizer\.json"):
        Tokenizer.from_pretrained_dir(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        load_tokenizer(tmp_path / "notes.txt")


@pytest.mark.slow
def test_pretrained_dir_saved_by_transformers_matches_transformers(
    tmp_path: Path, hf_smollm_tokenizer: Any
) -> None:
    from transformers import AutoTokenizer

    hf_smollm_tokenizer.save_pretrained(tmp_path)
    reference = AutoTokenizer.from_pretrained(tmp_path)
    tokenizer = load_tokenizer(tmp_path)
    assert tokenizer is not None
    assert (tokenizer.eos_token_id, tokenizer.bos_token_id) == (
        reference.eos_token_id,
        reference.bos_token_id,
    )
    assert tokenizer.chat_template == reference.chat_template
    for text in VARIED_TEXTS:
        assert tokenizer.encode(text) == reference.encode(text), text


# --- chat templates --------------------------------------------------------------------------------

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Japan? 日本 🎌"},
    ],
]


def test_chat_template_renders_chatml_with_default_system_prompt(smollm_tokenizer: Tokenizer) -> None:
    assert smollm_tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}]) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("messages", CONVERSATIONS, ids=["user-only", "with-system"])
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(
    smollm_tokenizer: Tokenizer,
    hf_smollm_tokenizer: Any,
    messages: list[dict[str, str]],
    add_generation_prompt: bool,
) -> None:
    expected = hf_smollm_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert (
        smollm_tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
        == expected
    )


def test_chat_template_sees_special_tokens_and_extra_variables(smollm_tokenizer: Tokenizer) -> None:
    tokenizer = Tokenizer(
        smollm_tokenizer.backend,
        eos_token_id=2,
        chat_template="{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}{{ tools | tojson }}",
    )
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "é"}], tools=[{"name": "météo"}])
    # tojson keeps non-ASCII text as is, like transformers (Jinja's own filter would escape it).
    assert rendered == 'é<|im_end|>[{"name": "météo"}]'


def test_chat_template_trims_block_newlines_and_indentation(smollm_tokenizer: Tokenizer) -> None:
    # Block tags on their own indented lines leave neither their indentation nor their newline behind.
    template = "{% for m in messages %}\n  {% if m.role %}\n{{ m.role }}\n  {% endif %}\n{% endfor %}"
    tokenizer = Tokenizer(smollm_tokenizer.backend, chat_template=template)
    assert (
        tokenizer.apply_chat_template([{"role": "a", "content": ""}, {"role": "b", "content": ""}])
        == "a\nb\n"
    )


def test_chat_content_parts_and_null_content_render_as_their_text(smollm_tokenizer: Tokenizer) -> None:
    """OpenAI's list of text parts is the parts' texts joined, and null content (an assistant turn with no
    text) is empty, for LLM.chat as for the server; unsplit, a template concatenating content failed."""
    plain = [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Bye"},
    ]
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": None},
        {"role": "user", "content": [{"type": "text", "text": "Bye"}]},
    ]
    assert smollm_tokenizer.apply_chat_template(parts) == smollm_tokenizer.apply_chat_template(plain)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (5, "message 1: content must be a string or a list of text parts, got int"),
        ([{"type": "image_url", "image_url": {"url": "x"}}], "message 1: only text content parts"),
        ([{"type": "text", "text": 7}], "message 1: a text content part needs 'text', a string; got 7"),
        (["just a string"], "message 1: a content part must be a dict, got str"),
    ],
)
def test_chat_content_of_another_kind_is_refused_naming_the_message(
    smollm_tokenizer: Tokenizer, content: Any, message: str
) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "user", "content": content}]
    with pytest.raises(ValueError, match=re.escape(message)):
        smollm_tokenizer.apply_chat_template(messages)


def test_model_without_chat_template_raises(smollm_tokenizer: Tokenizer) -> None:
    with pytest.raises(ValueError, match="no chat template"):
        Tokenizer(smollm_tokenizer.backend).apply_chat_template([{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"content": "Hi"}], "message 0 has no string 'role'"),
        ([{"role": "user", "content": "Hi"}, {"role": "user"}], "message 1 has no 'content'"),
        (["Hi"], "message 0 must be a dict"),
        ("Hi", "messages must be a list"),
    ],
)
def test_malformed_messages_are_rejected_naming_the_message(
    smollm_tokenizer: Tokenizer, messages: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        smollm_tokenizer.apply_chat_template(messages)


def test_raise_exception_in_template_becomes_value_error(smollm_tokenizer: Tokenizer) -> None:
    template = (
        "{% if messages[0].role != 'user' %}{{ raise_exception('roles must start with user') }}{% endif %}"
    )
    tokenizer = Tokenizer(smollm_tokenizer.backend, chat_template=template)
    with pytest.raises(ValueError, match="roles must start with user"):
        tokenizer.apply_chat_template([{"role": "assistant", "content": "Hi"}])


def test_template_cannot_reach_python_internals(smollm_tokenizer: Tokenizer) -> None:
    template = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    tokenizer = Tokenizer(smollm_tokenizer.backend, chat_template=template)
    with pytest.raises(ValueError, match="rejected"):
        tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}])
