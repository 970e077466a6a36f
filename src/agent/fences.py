"""Markdown code fences (``` and ~~~): which one is open, and closing it.

One set of rules for everyone who needs them: the CLI's streaming renderer and multi-line input,
and Markdown exports (a reply stopped inside a code block must not turn the rest into code).
"""

from __future__ import annotations

FENCE_MARKS = ("```", "~~~")


def fence_mark(line: str) -> str | None:
    """The fence a line opens or closes (``` or ~~~ of some length), if it is a fence line."""
    stripped = line.lstrip()
    if len(line) - len(stripped) > 3:
        return None  # indented code, not a fence
    for mark in FENCE_MARKS:
        if stripped.startswith(mark):
            return stripped[: len(stripped) - len(stripped.lstrip(mark[0]))]
    return None


def closes(line: str, mark: str, open_fence: str) -> bool:
    """Whether a fence line closes the open fence (same character, at least as long, no info)."""
    same_kind = mark[0] == open_fence[0] and len(mark) >= len(open_fence)
    return same_kind and not line.strip(" " + mark[0])


def fence_after(line: str, open_fence: str | None) -> str | None:
    """The fence still open after this line (None: outside any code fence)."""
    mark = fence_mark(line)
    if mark is None:
        return open_fence
    if open_fence is None:
        return mark
    return None if closes(line, mark, open_fence) else open_fence


def unclosed_fence(text: str) -> str | None:
    """The fence left open at the end of the text (None if every fence is closed)."""
    fence: str | None = None
    for line in text.split("\n"):
        fence = fence_after(line, fence)
    return fence


def with_fences_closed(text: str) -> str:
    """The text, plus a closing fence line if it ends inside a code block."""
    fence = unclosed_fence(text)
    if fence is None:
        return text
    separator = "" if text.endswith("\n") else "\n"
    return f"{text}{separator}{fence}"
