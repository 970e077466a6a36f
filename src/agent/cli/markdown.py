"""Streaming Markdown: settled blocks are printed once, only the block being written is redrawn."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import Console, ConsoleOptions, RenderableType
from rich.markdown import Heading, Markdown, MarkdownElement
from rich.segment import Segment

from agent.fences import fence_after


def starts_block(lines: list[str], index: int, start: int) -> bool:
    """Whether this line begins a new top-level block: unindented text right after a blank line."""
    line = lines[index]
    return (
        index > start
        and line.strip() != ""
        and not line[:1].isspace()
        and lines[index - 1].strip() == ""
    )


def split_settled(text: str) -> tuple[list[str], str]:
    """Split a growing Markdown reply into finished blocks and the block still being written.

    A block is finished when a blank line outside a code fence is followed by an unindented line:
    later text can no longer change how it renders, so it can be printed once and left alone.
    """
    lines = text.split("\n")
    blocks: list[str] = []
    start = 0
    open_fence: str | None = None
    for index, line in enumerate(lines):
        if open_fence is None and starts_block(lines, index, start):
            block = "\n".join(lines[start:index]).strip("\n")
            if block.strip():
                blocks.append(block)
            start = index
        open_fence = fence_after(line, open_fence)
    return blocks, "\n".join(lines[start:]).strip("\n")


@dataclass
class Tail:
    """The last `height` lines of a renderable, so a live region never outgrows the screen."""

    renderable: RenderableType
    height: int

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        """Render everything, then yield the bottom lines."""
        lines = console.render_lines(self.renderable, options, pad=False)
        for line in lines[-max(self.height, 1) :]:
            yield from line
            yield Segment.line()


class LeftHeading(Heading):
    """Headings aligned left: a centred title looks lost in a chat transcript."""

    LEVEL_ALIGN: ClassVar[dict[str, Any]] = dict.fromkeys(Heading.LEVEL_ALIGN, "left")


class ChatMarkdown(Markdown):
    """Markdown as chat models write it: a single newline is a line break, headings stay left."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements,
        "heading_open": LeftHeading,
    }

    def __init__(self, markup: str, **options: Any) -> None:
        super().__init__(markup, **options)
        for token in self.parsed:
            for child in token.children or []:
                if child.type == "softbreak":
                    child.type = "hardbreak"
