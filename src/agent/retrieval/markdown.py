"""Markdown into retrievable chunks: split at headings, pack paragraphs, never cut a code block."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.documents import Document

DEFAULT_CHUNK_CHARS = 1000
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_ITEM = re.compile(r"^\s{0,3}([-*+]|\d+[.)])\s+")


@dataclass
class Section:
    """The lines under one heading, with the path of headings that leads to it."""

    path: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The heading path, e.g. 'Configuration > Environment'."""
        return " > ".join(self.path)


def headings(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """(line number, level, title) of each heading outside fenced code blocks."""
    found = []
    in_fence = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is not None:
            found.append((number, len(heading.group(1)), heading.group(2)))
    return found


def sections(text: str) -> Iterator[Section]:
    """Split markdown at headings; a single top-level title is left out of the section paths."""
    lines = text.splitlines()
    marks = headings(lines)
    titles = [mark for mark in marks if mark[1] == 1]
    skip = titles[0][0] if len(titles) == 1 else None
    stack: list[tuple[int, str]] = []
    current = Section(path=[])
    starts = {number: (level, title) for number, level, title in marks}
    for number, line in enumerate(lines):
        if number not in starts:
            current.lines.append(line)
            continue
        yield current
        if number == skip:
            current = Section(path=[starts[number][1]])  # the intro under the title
            continue
        level, title = starts[number]
        stack = [(lvl, name) for lvl, name in stack if lvl < level] + [(level, title)]
        current = Section(path=[name for _, name in stack])
    yield current


def blocks(lines: Iterable[str]) -> Iterator[str]:
    """Group lines into paragraphs, keeping each fenced code block whole."""
    block: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if block:
                yield "\n".join(block)
            block = []
        else:
            block.append(line)
    if block:
        yield "\n".join(block)


def list_items(block: str) -> list[str]:
    """Split a block at list items (continuation lines stay with their item)."""
    items: list[str] = []
    for line in block.splitlines():
        if _ITEM.match(line) or not items:
            items.append(line)
        else:
            items[-1] += "\n" + line
    return items


def split_block(block: str, max_chars: int) -> Iterator[str]:
    """Fit one block into chunks: whole if it fits, else by list item, else by line."""
    if len(block) <= max_chars:
        yield block
        return
    items = list_items(block)
    if len(items) == 1:
        yield from hard_split(block, max_chars)
        return
    for item in items:
        yield from split_block(item, max_chars)


def hard_split(block: str, max_chars: int) -> Iterator[str]:
    """Cut an over-long block at line ends (or mid-line when a single line is too long)."""
    piece = ""
    for line in block.splitlines(keepends=True):
        while len(line) > max_chars:
            if piece:
                yield piece.rstrip("\n")
                piece = ""
            yield line[:max_chars]
            line = line[max_chars:]
        if len(piece) + len(line) > max_chars:
            yield piece.rstrip("\n")
            piece = ""
        piece += line
    if piece.strip():
        yield piece.rstrip("\n")


def _with_joiners(parts: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Pair each part with what joins it to the previous one: a blank line between blocks."""
    for number, part in enumerate(parts):
        yield part, "\n\n" if number == 0 else "\n"


def pack(paragraphs: Iterable[str], max_chars: int) -> Iterator[str]:
    """Join consecutive paragraphs into chunks of at most `max_chars` characters."""
    chunk = ""
    for paragraph in paragraphs:
        for part, joiner in _with_joiners(split_block(paragraph, max_chars)):
            if chunk and len(chunk) + len(joiner) + len(part) > max_chars:
                yield chunk
                chunk = ""
            chunk = f"{chunk}{joiner}{part}" if chunk else part
    if chunk:
        yield chunk


def split_markdown(
    text: str, source: str, *, max_chars: int = DEFAULT_CHUNK_CHARS
) -> list[Document]:
    """Chunk one markdown text; each chunk starts with its heading path so it embeds in context."""
    documents = []
    for section in sections(text):
        budget = max(max_chars - len(section.title) - 2, max_chars // 2)
        for chunk in pack(blocks(section.lines), budget):
            content = f"{section.title}\n\n{chunk}" if section.title else chunk
            metadata = {"source": source, "section": section.title}
            documents.append(Document(page_content=content, metadata=metadata))
    return documents


def load_markdown(
    paths: Iterable[Path], *, root: Path | None = None, max_chars: int = DEFAULT_CHUNK_CHARS
) -> list[Document]:
    """Read and chunk markdown files; sources are paths relative to `root` (else file names)."""
    documents = []
    for path in paths:
        source = path.relative_to(root).as_posix() if root is not None else path.name
        text = path.read_text(encoding="utf-8")
        documents.extend(split_markdown(text, source, max_chars=max_chars))
    return documents
