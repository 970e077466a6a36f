"""Ctrl-C during a reply: the first press stops the model (keeping what it said)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

# LangChain, LangGraph, the database drivers and the model load inside the functions that use
# them (types under TYPE_CHECKING), so `agent --version` and `agent -h` start fast.
if TYPE_CHECKING:
    from agent.chatbot import Chatbot


@dataclass
class StopRequest:
    """Whether the user pressed Ctrl-C while the reply was streaming."""

    event: threading.Event = field(default_factory=threading.Event)

    @property
    def stopped(self) -> bool:
        """True once Ctrl-C was pressed."""
        return self.event.is_set()


@contextmanager
def ctrl_c_stops(bot: Chatbot) -> Iterator[StopRequest]:
    """While inside, Ctrl-C asks the bot to stop (the stream then ends by itself, history valid).

    A second Ctrl-C raises KeyboardInterrupt as usual, for a model that is not producing tokens.
    Outside the main thread (where signals cannot be handled) Ctrl-C keeps its default meaning.
    """
    request = StopRequest()

    def on_ctrl_c(signum: int, frame: FrameType | None) -> None:
        if request.stopped:
            raise KeyboardInterrupt
        request.event.set()
        bot.stop()

    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def keyboard_echo_off() -> Iterator[None]:
    """Keys typed while a reply streams are not echoed (they wait for the next prompt).

    The terminal's own echo (including its ^C) would move the cursor under the live Markdown
    region and leave duplicated lines behind.
    """
    try:
        import termios
    except ImportError:  # not a POSIX terminal
        yield
        return
    fd = sys.stdin.fileno() if sys.stdin.isatty() else -1
    if fd < 0:
        yield
        return
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] = quiet[3] & ~(termios.ECHO | termios.ECHOCTL)
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
