"""One reply on screen, for `chat` and `ask` alike: streamed, stoppable, marked when incomplete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.cli.interrupt import ctrl_c_stops, keyboard_echo_off
from agent.cli.terminal import ReplyView

# LangChain and LangGraph load inside the functions that use them, so `agent -h` starts fast.
if TYPE_CHECKING:
    from agent.chatbot import Chatbot, TurnReport

INTERRUPTED_MARK = "[interrupted]"


def cut_mark(tokens: int | None) -> str:
    """The mark of a reply the length limit cut (it may end mid-sentence)."""
    return f"[cut at {tokens} tokens]" if tokens else "[cut at the length limit]"


def reply_mark(*, interrupted: bool, cut: bool, tokens: int | None) -> str | None:
    """How an incomplete reply is marked on screen, in /history and in `threads show`."""
    if interrupted:
        return INTERRUPTED_MARK
    return cut_mark(tokens) if cut else None


def turn_mark(report: TurnReport | None, stopped: bool) -> str | None:
    """The mark for the reply a turn just streamed."""
    if report is None:
        return INTERRUPTED_MARK if stopped else None
    cut, tokens = report.cut, report.reply_tokens
    return reply_mark(interrupted=report.interrupted or stopped, cut=cut, tokens=tokens)


def eviction_note(report: TurnReport | None, hint: str) -> str | None:
    """One line when a turn pushed exchanges out of the model's window (else None).

    Nothing is lost (the transcript keeps them), but the model no longer sees them, which
    must not happen silently. `hint` ends the line (in a chat: "/history shows what it sees").
    """
    if report is None or report.evicted <= 0:
        return None
    count = report.evicted
    moved = f"{count} earlier exchange{'' if count == 1 else 's'} moved out of the model's window"
    return f"{moved}; {hint}"


def close_stream(pieces: Iterator[str]) -> None:
    """End a reply stream early; the Chatbot saves what arrived, marked interrupted."""
    close = getattr(pieces, "close", None)
    if close is not None:
        close()


class NoView:
    """A view that shows nothing (`ask --json` prints the reply at the end)."""

    def add(self, piece: str) -> None:
        """Nothing to show."""

    def close(self, *, mark: str | None = None) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class Streamed:
    """What a streamed reply came to."""

    text: str
    stopped: bool  # the user pressed Ctrl-C (the partial reply is saved, marked)
    report: TurnReport | None


def stream_reply(bot: Chatbot, pieces: Iterator[str], view: ReplyView) -> Streamed:
    """Show a reply as it streams; the first Ctrl-C stops it and keeps what arrived.

    Raises:
        KeyboardInterrupt: On a second Ctrl-C (the view is closed, marked interrupted).
        Exception: The stream's own errors, after the view is closed unmarked.
    """
    received: list[str] = []
    try:
        with keyboard_echo_off(), ctrl_c_stops(bot) as request:
            for piece in pieces:
                received.append(piece)
                view.add(piece)
    except KeyboardInterrupt:  # a second Ctrl-C: the stream settles as it unwinds
        close_stream(pieces)
        view.close(mark=INTERRUPTED_MARK)
        raise
    except BaseException:
        view.close()
        raise
    view.close(mark=turn_mark(bot.last_turn, request.stopped))
    return Streamed("".join(received), request.stopped, bot.last_turn)
