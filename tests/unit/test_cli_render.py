"""The CLI's pure parts: streaming Markdown blocks, multi-line input, plain and rich output."""

from __future__ import annotations

import io
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from agent.cli.input import LineReader, continue_line, needs_more, open_fence
from agent.cli.markdown import ChatMarkdown, Tail, split_settled
from agent.cli.reply import INTERRUPTED_MARK
from agent.cli.terminal import RichReplyView, aligned
from agent.fences import unclosed_fence, with_fences_closed
from tests.terminal import EmulatedTerminal

ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def visible(text: str) -> str:
    return ANSI_CODE.sub("", text)


# --- split_settled ----------------------------------------------------------------------------


def test_paragraphs_settle_once_the_next_one_starts() -> None:
    assert split_settled("One.\n\nTwo") == (["One."], "Two")
    assert split_settled("One.\n\n") == ([], "One.")
    assert split_settled("One.\nstill one") == ([], "One.\nstill one")


def test_a_code_fence_is_one_block_even_with_blank_lines() -> None:
    text = "Intro\n\n```python\nx = 1\n\ny = 2\n```\n\nAfter"
    assert split_settled(text) == (["Intro", "```python\nx = 1\n\ny = 2\n```"], "After")
    assert split_settled("```\na\n\nb") == ([], "```\na\n\nb")  # still open


def test_indented_continuations_stay_with_their_block() -> None:
    text = "1. one\n\n   more about one\n\n2. two"
    assert split_settled(text) == (["1. one\n\n   more about one"], "2. two")


def test_longer_or_tilde_fences_close_only_with_their_own_kind() -> None:
    text = "~~~\n```\nstill code\n\n~~~\n\nout"
    assert split_settled(text) == (["~~~\n```\nstill code\n\n~~~"], "out")


markdownish = st.text(alphabet=st.sampled_from(list("ab #-*`~\n \n\n1.")), max_size=120)


@given(markdownish, st.data())
def test_settled_blocks_never_change_as_the_reply_grows(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    early, _ = split_settled(text[:cut])
    late, _ = split_settled(text)
    assert late[: len(early)] == early


@given(markdownish)
def test_blocks_and_pending_keep_all_the_visible_text(text: str) -> None:
    blocks, pending = split_settled(text)
    assert "".join("".join([*blocks, pending]).split()) == "".join(text.split())


# --- input ------------------------------------------------------------------------------------


def test_enter_continues_after_a_backslash_or_inside_a_fence() -> None:
    assert needs_more("first \\")
    assert needs_more("```py\ncode")
    assert not needs_more("```py\ncode\n```")
    assert not needs_more("plain")
    assert open_fence("text\n~~~\nx") and not open_fence("~~~\nx\n~~~")


def test_continue_line_drops_the_backslash_outside_fences_only() -> None:
    assert continue_line("a \\") == "a \n"
    assert continue_line("```c\n#define X \\") == "```c\n#define X \\\n"


def test_line_reader_joins_multi_line_messages_and_ends_at_eof() -> None:
    reader = LineReader(io.StringIO("one\\\ntwo\n```\nx\n\ny\n```\nlast"))
    assert reader.read("> ") == "one\ntwo"
    assert reader.read("> ") == "```\nx\n\ny\n```"
    assert reader.read("> ") == "last"
    assert reader.read("> ") is None


def test_line_reader_returns_an_unfinished_message_at_eof() -> None:
    assert LineReader(io.StringIO("```\nunclosed\n")).read("> ") == "```\nunclosed"


# --- output -----------------------------------------------------------------------------------


def terminal_console(height: int = 24) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, height=height, color_system="256")
    return console, buffer


REPLY = "Here is code:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nDone, **really**.\n"
# Taller than the 8-row terminal below, so blocks scroll while the live region redraws.
LONG_REPLY = (
    "Intro line.\n\n```python\n"
    + "".join(f"x{i} = {i}\n" for i in range(12))
    + "```\n\n- first item\n- second item\n\nClosing line.\n"
)
LONG_LINES = ["Intro line.", *(f"x{i} = {i}" for i in range(12)), "first item", "Closing line."]


def stream_into(
    terminal: EmulatedTerminal, reply: str, sizes: list[int], refreshes: list[bool]
) -> None:
    """Stream `reply` in pieces of `sizes`; after piece i the display refreshes if refreshes[i].

    The view's own timer is off: the test decides when "the timer fires", so every schedule a
    busy or idle machine could produce is one the test can run, deterministically.
    """
    view = RichReplyView(terminal.console(), stream=True, auto_refresh=False)
    start = 0
    for index, size in enumerate(sizes):
        view.add(reply[start : start + size])
        start += size
        if refreshes[index % len(refreshes)]:
            view.live.refresh()
    view.add(reply[start:])
    view.close()


def occurrences(lines: list[str], wanted: str) -> int:
    return sum(1 for line in lines if wanted in line)


def test_streamed_markdown_ends_with_every_block_rendered_once() -> None:
    terminal = EmulatedTerminal()
    stream_into(terminal, REPLY, [3] * (len(REPLY) // 3), [True])

    lines = terminal.lines()
    assert occurrences(lines, "Here is code:") == 1
    assert occurrences(lines, "def add(a, b):") == 1
    assert occurrences(lines, "Done, really.") == 1 and "**" not in "".join(lines)
    assert "\x1b[38;5;" in terminal.output()  # the code block is syntax-highlighted
    # The bytes redraw the live region many times; the terminal shows each line once.
    assert terminal.output().count("def") > 1


@settings(max_examples=20, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=15), max_size=40),
    refreshes=st.lists(st.booleans(), min_size=1, max_size=40),
)
@example(sizes=[1] * 120, refreshes=[True])  # the slowest terminal: a redraw after every piece
@example(sizes=[1] * 120, refreshes=[False])  # the fastest machine: no redraw until the end
def test_no_refresh_schedule_shows_a_line_twice(sizes: list[int], refreshes: list[bool]) -> None:
    terminal = EmulatedTerminal(height=8)
    stream_into(terminal, LONG_REPLY, sizes, refreshes)

    for snapshot in terminal.snapshots:  # after every write, scrollback included
        for line in LONG_LINES:
            assert occurrences(snapshot, line) <= 1, (line, snapshot)
    final = terminal.lines()
    assert [line for line in LONG_LINES if occurrences(final, line) == 1] == LONG_LINES
    positions = [next(i for i, text in enumerate(final) if line in text) for line in LONG_LINES]
    assert positions == sorted(positions)


def test_a_printed_block_is_not_shown_again_by_a_stale_live_region() -> None:
    terminal = EmulatedTerminal()
    view = RichReplyView(terminal.console(), stream=True, auto_refresh=False)
    view.add("First paragraph.\n\n")
    view.live.refresh()  # the live region shows the paragraph while it is still being written
    writes = len(terminal.snapshots)
    view.add("Second")  # settles the first paragraph: it is printed above the live region

    for snapshot in terminal.snapshots[writes:]:
        assert occurrences(snapshot, "First paragraph.") <= 1, snapshot
    view.close()
    assert occurrences(terminal.lines(), "First paragraph.") == 1


def test_an_interrupted_reply_is_marked() -> None:
    terminal = EmulatedTerminal()
    view = RichReplyView(terminal.console(), stream=True, auto_refresh=False)
    view.add("Half a thou")
    view.close(mark=INTERRUPTED_MARK)

    assert terminal.lines()[-2:] == ["Half a thou", INTERRUPTED_MARK]


def test_single_newlines_are_line_breaks_and_headings_are_left_aligned() -> None:
    console, buffer = terminal_console()
    console.print(ChatMarkdown("# Title\nline one\nline two"))

    lines = [line.rstrip() for line in visible(buffer.getvalue()).splitlines() if line.strip()]
    assert lines == ["Title", "line one", "line two"]


def test_tail_shows_only_the_last_lines() -> None:
    console, buffer = terminal_console()
    console.print(Tail(ChatMarkdown("\n".join(f"line {i}" for i in range(10))), 3))

    assert visible(buffer.getvalue()).split() == ["line", "7", "line", "8", "line", "9"]


def test_plain_tables_are_aligned_columns() -> None:
    assert aligned([["a", "bb", "c"], ["ccc", "d", ""]]) == ["a    bb  c", "ccc  d"]


# --- fences in exports ------------------------------------------------------------------------


def test_a_reply_stopped_inside_a_code_block_gets_its_fence_closed() -> None:
    assert with_fences_closed("Here:\n```python\nx = 1") == "Here:\n```python\nx = 1\n```"
    assert with_fences_closed("~~~~\ncode\n") == "~~~~\ncode\n~~~~"
    assert with_fences_closed("```\n~~~\nstill code") == "```\n~~~\nstill code\n```"
    assert with_fences_closed("done\n```\nx\n```") == "done\n```\nx\n```"  # unchanged


@given(markdownish)
def test_closing_fences_keeps_the_text_and_leaves_none_open(text: str) -> None:
    closed = with_fences_closed(text)

    assert closed.startswith(text)
    assert unclosed_fence(closed) is None
    assert with_fences_closed(closed) == closed
