"""A terminal emulator (pyte) for rich output: what a person sees, not the bytes that drew it.

A live region redraws itself in place (cursor up, erase line), so the raw bytes of a streamed
reply hold the same text many times; only a terminal tells whether the scrollback does.
"""

from __future__ import annotations

import pyte
from rich.console import Console

WIDTH = 60


def _line_text(line: dict[int, pyte.screens.Char], width: int) -> str:
    return "".join(line[column].data for column in range(width)).rstrip()


class EmulatedTerminal:
    """A file rich writes to; every write is applied to a screen with a scrollback."""

    def __init__(self, width: int = WIDTH, height: int = 24) -> None:
        self.width = width
        self.height = height
        self.screen = pyte.HistoryScreen(width, height, history=10_000)
        self.screen.set_mode(pyte.modes.LNM)  # a tty's onlcr: "\n" also returns the carriage
        self.stream = pyte.Stream(self.screen)
        self.raw: list[str] = []
        self.snapshots: list[list[str]] = []

    def write(self, text: str) -> int:
        """Apply one write and remember what the terminal showed after it."""
        self.raw.append(text)
        self.stream.feed(text)
        self.snapshots.append(self.lines())
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""

    def isatty(self) -> bool:
        """Rich asks; the console is forced into terminal mode anyway."""
        return True

    def lines(self) -> list[str]:
        """The scrollback then the screen, trailing blank lines dropped."""
        history = [_line_text(line, self.width) for line in self.screen.history.top]
        shown = [line.rstrip() for line in self.screen.display]
        lines = history + shown
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def console(self) -> Console:
        """A rich console drawing on this terminal, in colour."""
        return Console(
            file=self,  # type: ignore[arg-type]
            force_terminal=True,
            width=self.width,
            height=self.height,
            color_system="256",
        )

    def output(self) -> str:
        """Every byte written, escape codes included."""
        return "".join(self.raw)
