"""Reading the user's messages: prompt_toolkit in a terminal, plain lines from a pipe.

Multi-line input works the same way in both: end a line with a backslash to continue on the
next one, or open a ``` fence and everything up to the closing ``` is one message. In a
terminal, Esc then Enter (or Alt-Enter) also inserts a newline, and pasted text keeps its lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from agent.fences import unclosed_fence

# prompt_toolkit loads only when a person is typing (PromptReader), so `agent -h` starts fast.
if TYPE_CHECKING:
    from prompt_toolkit.key_binding import KeyBindings

CONTINUATION = "\\"


def open_fence(text: str) -> bool:
    """Whether the text has a ``` (or ~~~) fence that is not closed yet."""
    return unclosed_fence(text) is not None


def needs_more(text: str) -> bool:
    """Whether Enter should add a line instead of sending: a trailing backslash or open fence."""
    return text.endswith(CONTINUATION) or open_fence(text)


def continue_line(text: str) -> str:
    """The message so far, ready for its next line (a continuation backslash is dropped)."""
    if not open_fence(text) and text.endswith(CONTINUATION):
        text = text[: -len(CONTINUATION)]
    return text + "\n"


class Reader(Protocol):
    """Where messages come from; `read` returns None when the user wants to leave.

    `shows_input` says whether the prompt and the typed text are already on the screen; when
    not (piped input), the chat writes them out, so its output reads like the screen would.
    """

    shows_input: bool

    def read(self, prompt: str) -> str | None:
        """Return the next message (possibly multi-line), or None at end of input."""


class LineReader:
    """Messages from a non-terminal stream (a pipe, a file, a test's input)."""

    shows_input = False

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def read(self, prompt: str) -> str | None:
        """Read lines until a message is complete; None at end of input."""
        del prompt  # nobody is looking at a pipe
        text: str | None = None
        while True:
            line = self.stream.readline()
            if not line:
                return text
            line = line.rstrip("\n").rstrip("\r")
            text = line if text is None else continue_line(text) + line
            if not needs_more(text):
                return text


class PromptReader:
    """Messages typed in a terminal: line editing, history (arrow keys), multi-line input."""

    shows_input = True

    def __init__(self, history_file: Path, bottom_toolbar: Callable[[], str] | None = None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history_file.parent.mkdir(parents=True, exist_ok=True)
        self.session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_file)),
            multiline=True,
            key_bindings=_key_bindings(),
            prompt_continuation=lambda width, line_number, wrap_count: "." * (width - 1) + " ",
            bottom_toolbar=bottom_toolbar,
        )

    def read(self, prompt: str) -> str | None:
        """Prompt for a message; Ctrl-D or Ctrl-C at the prompt mean leave (None)."""
        try:
            text = self.session.prompt(prompt)
        except (EOFError, KeyboardInterrupt):
            return None
        return text


def _key_bindings() -> KeyBindings:
    """Enter sends unless the message asks for more; Esc-Enter always adds a newline."""
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.key_binding.key_processor import KeyPressEvent

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.text
        if not (needs_more(text) and buffer.document.is_cursor_at_the_end):
            buffer.validate_and_handle()
            return
        buffer.text = continue_line(text)
        buffer.cursor_position = len(buffer.text)

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings
