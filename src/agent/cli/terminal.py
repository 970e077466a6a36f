"""Output: rich Markdown and spinners in a terminal, plain text (no ANSI codes) anywhere else."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from agent.cli.markdown import ChatMarkdown, Tail, split_settled

REFRESH_PER_SECOND = 15


def stdout_is_terminal() -> bool:
    """Whether a person is watching stdout (not a pipe, a file or a test runner)."""
    return sys.stdout.isatty()


class ReplyView(Protocol):
    """Shows one reply as it arrives."""

    def add(self, piece: str) -> None:
        """Show another piece of the reply."""

    def close(self, *, mark: str | None = None) -> None:
        """Finish the reply, with a mark after it if it is incomplete ([interrupted]...)."""


class PlainReplyView:
    """Writes the reply's text as it arrives (or all at once when not streaming)."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.buffer: list[str] = []
        self.wrote = False

    def add(self, piece: str) -> None:
        """Write the piece now, or keep it for the end."""
        self.wrote = True
        if self.stream:
            click.echo(piece, nl=False)
            sys.stdout.flush()
        else:
            self.buffer.append(piece)

    def close(self, *, mark: str | None = None) -> None:
        """End the reply's line (nothing at all if no text came and there is no mark)."""
        if not self.stream:
            click.echo("".join(self.buffer), nl=False)
        if mark:
            click.echo(f" {mark}" if self.wrote else mark)
        elif self.wrote:
            click.echo()


class RichReplyView:
    """Markdown as it streams: finished blocks are printed once, the block being written is live.

    A spinner holds the place until the first token, so the screen is never blank.
    """

    def __init__(self, console: Console, stream: bool, *, auto_refresh: bool = True) -> None:
        self.console = console
        self.stream = stream
        self.text = ""
        self.printed = 0
        self.live = Live(
            Spinner("dots", text=Text("thinking…", style="dim")),
            console=console,
            auto_refresh=auto_refresh,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def _tail(self, text: str) -> RenderableType:
        """The block being written, cut to fit the screen so the live region never scrolls."""
        return Tail(ChatMarkdown(text), max(self.console.size.height - 2, 3))

    def add(self, piece: str) -> None:
        """Print blocks that can no longer change; redraw the one still being written."""
        self.text += piece
        if not self.stream:
            return
        settled, pending = split_settled(self.text)
        new_blocks = settled[self.printed :]
        self.printed = len(settled)
        # The live region must stop showing a block before it is printed: a print redraws the
        # live region as last refreshed, so a stale one would show the block twice until the
        # next refresh (up to a whole timer tick, or far longer on a busy machine).
        self.live.update(self._tail(pending) if pending else Text(""), refresh=bool(new_blocks))
        self._print(new_blocks)

    def _print(self, blocks: list[str]) -> None:
        """Print settled blocks above the live region, each followed by a blank line."""
        for block in blocks:
            self.console.print(ChatMarkdown(block))
            self.console.line()

    def close(self, *, mark: str | None = None) -> None:
        """Render the rest in full, then the mark of an incomplete reply, and leave it on screen."""
        settled, pending = split_settled(self.text)
        if not self.stream:
            settled, pending = [], self.text
        new_blocks = settled[self.printed :]
        self.printed = len(settled)
        parts: list[RenderableType] = [ChatMarkdown(pending)] if pending.strip() else []
        if mark:
            parts.append(Text(mark, style="dim italic"))
        self.live.update(Group(*parts), refresh=True)
        self._print(new_blocks)
        self.live.stop()


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows padded into columns with two spaces between them, trailing spaces removed."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


class Terminal:
    """Everything the commands print goes through here, so pipes get plain text."""

    def __init__(self, rich: bool | None = None) -> None:
        self.rich = stdout_is_terminal() if rich is None else rich
        self.console = Console(highlight=False) if self.rich else None

    def line(self, text: str = "") -> None:
        """Plain text on stdout."""
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)
        else:
            click.echo(text)

    def note(self, text: str) -> None:
        """Secondary information (headers, confirmations): dim in a terminal."""
        if self.console is not None:
            self.console.print(Text(text, style="dim"))
        else:
            click.echo(text)

    def error(self, text: str) -> None:
        """One line on stderr."""
        click.echo(f"Error: {text}", err=True)

    def markdown(self, text: str) -> None:
        """Markdown, rendered in a terminal, as written otherwise."""
        if self.console is not None:
            self.console.print(ChatMarkdown(text))
        else:
            click.echo(text)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Rows as a table: rich in a terminal, aligned plain text otherwise (scripts: --json)."""
        if self.console is None:
            for line in aligned([list(headers), *[list(row) for row in rows]]):
                click.echo(line)
            return
        table = Table(*headers, box=None, header_style="bold", pad_edge=False)
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def status(self, message: str) -> AbstractContextManager[object]:
        """A spinner while something slow happens (nothing when not in a terminal)."""
        if self.console is None:
            return nullcontext()
        return self.console.status(Text(message, style="dim"), spinner="dots")

    def reply_view(self, stream: bool = True) -> ReplyView:
        """A view for the next reply."""
        if self.console is None:
            return PlainReplyView(stream)
        return RichReplyView(self.console, stream)
