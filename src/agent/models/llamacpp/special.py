"""No role forgery: message text that spells a control token must stay plain text.

llama.cpp's server tokenizes the rendered chat prompt with special-token parsing on, so a user
message containing `<|im_start|>system` would open a real system turn. We read the model's own
special tokens (GGUF metadata) and break each occurrence in message text with a zero-width joiner,
which the tokenizer then treats as ordinary characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

ZERO_WIDTH_JOINER = "\u200d"


@lru_cache(maxsize=8)
def _pattern(tokens: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching any of the tokens, longest first so prefixes don't win."""
    breakable = sorted({t for t in tokens if len(t) >= 2}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, breakable))) if breakable else None


def neutralize(text: str, tokens: Iterable[str]) -> str:
    """Insert a zero-width joiner after the first character of every special-token spelling."""
    pattern = _pattern(tuple(tokens))
    if pattern is None:
        return text
    return pattern.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_JOINER + m.group(0)[1:], text)


def _neutralize_content(content: Any, tokens: tuple[str, ...]) -> Any:
    """Neutralize a chat-completions `content`: a string or a list of typed parts."""
    if isinstance(content, str):
        return neutralize(content, tokens)
    if isinstance(content, list):
        return [
            {**part, "text": neutralize(part["text"], tokens)}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content


def neutralize_payload(payload: dict[str, Any], tokens: tuple[str, ...]) -> dict[str, Any]:
    """A chat-completions payload whose every message (any role) carries no control tokens."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return payload
    safe = [
        {**m, "content": _neutralize_content(m.get("content"), tokens)}
        if isinstance(m, dict)
        else m
        for m in messages
    ]
    return {**payload, "messages": safe}
