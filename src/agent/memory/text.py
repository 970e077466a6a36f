"""The text memory keeps exactly, on every backend: thread ids, messages and stored values.

One rule per kind of character, the same for memory, SQLite and PostgreSQL (docs/memory.md):
- thread ids: 1 to MAX_THREAD_ID characters, not blank, no control characters and no lone
  surrogates;
  anything else is refused up front (`InvalidThreadIdError`): ids become database keys and
  namespace labels, and PostgreSQL text cannot hold NUL;
- message text: any character except lone surrogates, which are not Unicode text (no UTF-8
  form; LangGraph's checkpoint serializer turns them into '?'), so they are refused up front
  (`InvalidTextError`) instead of being silently changed;
- NUL and every other control character in a message: stored and read back exactly.
  PostgreSQL's JSONB cannot hold NUL, so a store value with a NUL (or, from a model, a lone
  surrogate) anywhere inside is written as an ASCII JSON envelope and decoded on read
  (`to_stored` / `from_stored`); every other value is written as it is.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

from agent.errors import InvalidTextError
from agent.memory.errors import InvalidThreadIdError

MAX_THREAD_ID = 128  # a label is at most 12 ASCII characters per character: within index limits
ENVELOPE = "agent:json"


def require_thread_id(thread_id: object) -> str:
    """Return `thread_id` if the memory can keep it for the thread's whole life.

    Args:
        thread_id: An id chosen by the caller (a uuid, "session.42", an email...).

    Returns:
        The same id.

    Raises:
        InvalidThreadIdError: If it is not a string, is blank, is longer than MAX_THREAD_ID
            characters, or holds a control character or a lone surrogate.
    """
    if not isinstance(thread_id, str):
        raise InvalidThreadIdError(thread_id, f"not a string but {type(thread_id).__name__}")
    if not thread_id.strip():
        raise InvalidThreadIdError(thread_id, "it is empty or blank")
    if len(thread_id) > MAX_THREAD_ID:
        raise InvalidThreadIdError(
            f"{thread_id[:20]}...", f"longer than {MAX_THREAD_ID} characters ({len(thread_id)})"
        )
    for position, character in enumerate(thread_id):
        kind = unicodedata.category(character)
        if kind == "Cc":
            raise InvalidThreadIdError(
                thread_id, f"control character U+{ord(character):04X} at position {position}"
            )
        if kind == "Cs":
            raise InvalidThreadIdError(
                thread_id, f"lone surrogate U+{ord(character):04X} at position {position}"
            )
    return thread_id


def lone_surrogate(text: str) -> int | None:
    """The position of the first lone surrogate in `text`, or None if it is valid Unicode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def require_valid_text(text: str) -> str:
    """Return message text the memory can store exactly; refuse lone surrogates clearly.

    Raises:
        InvalidTextError: If the text holds a lone surrogate.
    """
    position = lone_surrogate(text)
    if position is not None:
        raise InvalidTextError(f"U+{ord(text[position]):04X}", position)
    return text


def _needs_envelope(value: Any) -> bool:
    """Whether a JSON value holds a string some backend cannot store as it is."""
    if isinstance(value, str):
        return "\x00" in value or lone_surrogate(value) is not None
    if isinstance(value, Mapping):
        return any(_needs_envelope(k) or _needs_envelope(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_needs_envelope(item) for item in value)
    return False


def to_stored(value: dict[str, Any]) -> dict[str, Any]:
    """A store value every backend can hold; `from_stored` gives back exactly `value`."""
    if _needs_envelope(value):
        return {ENVELOPE: json.dumps(value, ensure_ascii=True)}
    return value


def from_stored(value: Mapping[str, Any]) -> dict[str, Any]:
    """The value `to_stored` was given (values written as they are come back unchanged)."""
    if len(value) == 1 and isinstance(value.get(ENVELOPE), str):
        decoded: dict[str, Any] = json.loads(value[ENVELOPE])
        return decoded
    return dict(value)
