"""Markdown into retrievable chunks: split at headings, pack paragraphs, never cut a code block."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.documents import Document

DEFAULT_CHUNK_CHARS = 1000
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class Section:
    """The lines under one heading, with the path of headings that leads to it."""

    path: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The heading path, e.g. 'Configuration > Environment'."""
        return " > ".join(self.path)


def sections(text: str) -> Iterator[Section]:
    """Split markdown at headings (ignoring '#' lines inside fenced code blocks)."""
    stack: list[tuple[int, str]] = []
    current = Section(path=[])
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None:
            current.lines.append(line)
            continue
        yield current
        level = len(heading.group(1))
        stack = [(lvl, title) for lvl, title in stack if lvl < level] + [(level, heading.group(2))]
        current = Section(path=[title for _, title in stack])
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


def pack(paragraphs: Iterable[str], max_chars: int) -> Iterator[str]:
    """Join consecutive paragraphs into chunks of at most `max_chars` characters."""
    chunk = ""
    for paragraph in paragraphs:
        for part in hard_split(paragraph, max_chars) if len(paragraph) > max_chars else [paragraph]:
            if chunk and len(chunk) + 2 + len(part) > max_chars:
                yield chunk
                chunk = ""
            chunk = f"{chunk}\n\n{part}" if chunk else part
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
