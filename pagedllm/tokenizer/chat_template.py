"""Renders a model's Jinja chat template the way Hugging Face transformers does.

Chat templates are written against transformers' environment, so we reproduce its contract: a sandbox
(templates come from downloaded checkpoints), ``trim_blocks`` + ``lstrip_blocks``, the ``loopcontrols``
extension, ``raise_exception(msg)`` and ``strftime_now(fmt)`` globals, and a ``tojson`` filter that
keeps non-ASCII text as is (Jinja's own escapes it for HTML).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


def render_chat_template(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool,
    special_tokens: Mapping[str, str | None],
    **template_kwargs: Any,
) -> str:
    """Renders ``messages`` into a prompt; ValueError for malformed messages or a template that rejects them.

    ``special_tokens`` (``bos_token``, ``eos_token``, ...) and ``template_kwargs`` (``tools``,
    ``enable_thinking``, ...) become template variables.
    """
    validate_messages(messages)
    messages = [
        {**message, "content": text_content(message["content"], i)} for i, message in enumerate(messages)
    ]
    try:
        compiled = _compile(template)
    except jinja2.TemplateSyntaxError as error:
        raise ValueError(f"the chat template has a syntax error on line {error.lineno}: {error}") from error
    try:
        return compiled.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            # NOTE: a token the tokenizer lacks stays undefined, which renders as nothing, as in transformers
            # (None rendered the text "None": Qwen2 tokenizers have no BOS).
            **{name: token for name, token in special_tokens.items() if token is not None},
            **template_kwargs,
        )
    except (jinja2.TemplateError, TypeError) as error:
        # Templates call raise_exception for conversations they do not support (e.g. roles that do
        # not alternate), or meet a field of a type they cannot use (a name that is a number): that is
        # the caller's input being wrong, not a bug here.
        raise ValueError(f"the chat template rejected the messages: {error}") from error


def text_content(content: Any, index: int | None = None) -> str:
    """A message's content as templates expect it, a string: None is "" (an assistant turn with no text),
    and OpenAI's list of content parts is their texts joined (only text parts are supported)."""
    where = "" if index is None else f"message {index}: "
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, Mapping):
                raise ValueError(f"{where}a content part must be a dict, got {type(part).__name__}")
            if part.get("type") != "text":
                # NOTE: the type only: an image part's data URL may be megabytes long
                raise ValueError(f"{where}only text content parts are supported, got {part.get('type')!r}")
            if not isinstance(part.get("text"), str):
                raise ValueError(
                    f"{where}a text content part needs 'text', a string; got {part.get('text')!r}"
                )
            texts.append(part["text"])
        return "".join(texts)
    raise ValueError(f"{where}content must be a string or a list of text parts, got {type(content).__name__}")


def validate_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """ValueError naming the first message that is not a mapping with a string role and a content key."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ValueError(f"messages must be a list of dicts, got {type(messages).__name__}")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"message {index} must be a dict with 'role' and 'content', got {message!r}")
        if not isinstance(message.get("role"), str):
            raise ValueError(f"message {index} has no string 'role': {message!r}")
        if "content" not in message:
            raise ValueError(f"message {index} has no 'content': {message!r}")


@lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    # NOTE: immutable sandbox: a template may neither reach Python internals nor mutate the
    # caller's messages (e.g. ``messages.pop()``).
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(template)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> NoReturn:
    raise jinja2.TemplateError(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)
