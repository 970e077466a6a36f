"""The `agent` command end to end in-process: whole transcripts through stdin, a fake model.

The fake model comes in through the CLI's seam (`Services`, click's context object); memory is
the real default (a SQLite file under the test's AGENT_HOME), read back with the Python API.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from langchain_core.callbacks import BaseCallbackManager, CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import ensure_config
from markdown_it import MarkdownIt

from agent.chatbot import CONTINUE_PROMPT, Chatbot, StopSwitch
from agent.cli import cli
from agent.cli.interrupt import ctrl_c_stops
from agent.cli.services import Services
from agent.memory import list_threads, open_memory, transcript
from agent.personas import load_personas
from tests.fakes import FakeChat, chat_calls, model_texts

ANSI = "\x1b["


def run(args: Sequence[str], input: str | None = None, model: FakeChat | None = None) -> Result:
    """Invoke `agent ARGS` with a fake model, as a pipe would (stdout is not a terminal)."""
    services = Services(chat_model=model if model is not None else FakeChat())
    return CliRunner().invoke(cli, list(args), input=input, obj=services)


def saved() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every saved thread (newest first) as (persona, [(type, text), ...]), read from disk."""
    with open_memory() as memory:
        return [
            (info.persona, [(m.type, str(m.text)) for m in transcript(memory, info.id)])
            for info in list_threads(memory)
        ]


def thread_ids() -> list[str]:
    """Saved thread ids, newest first."""
    with open_memory() as memory:
        return [info.id for info in list_threads(memory)]


def saved_messages(thread_id: str) -> list[BaseMessage]:
    """One thread's transcript, read from disk."""
    with open_memory() as memory:
        return transcript(memory, thread_id)


# --- chat: transcripts ------------------------------------------------------------------------


def test_chat_transcript_switches_persona_and_saves_the_thread() -> None:
    fake = FakeChat()
    result = run(["chat"], "Hi\n/persona tutor\nWhat is a list?\n/history\n/quit\n", model=fake)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("persona assistant · thread ")
    assert "chat model FakeChat" in lines[0]
    assert lines[1:] == [  # piped: each input is shown after its prompt, as on a screen
        "assistant> Hi",
        "You said: Hi",
        "assistant> /persona tutor",
        "Persona: tutor (from the next message on)",
        "tutor> What is a list?",
        "You said: What is a list?",
        "tutor> /history",
        "you: Hi",
        "assistant: You said: Hi",
        "you: What is a list?",
        "assistant: You said: What is a list?",
        "tutor> /quit",
    ]
    assert result.stderr == ""
    assert saved() == [
        (
            "tutor",
            [
                ("human", "Hi"),
                ("ai", "You said: Hi"),
                ("human", "What is a list?"),
                ("ai", "You said: What is a list?"),
            ],
        )
    ]
    # The model saw the tutor's system prompt on the second turn, with the first exchange.
    second = model_texts(fake.calls[1])
    assert second[0][0] == "system" and "Python tutor" in second[0][1]
    assert [text for _, text in second[1:]] == ["Hi", "You said: Hi", "What is a list?"]


def test_chat_output_to_a_pipe_has_no_ansi_codes() -> None:
    result = run(["chat"], "Hi\n/personas\n/threads\n/help\n/quit\n")

    assert result.exit_code == 0
    assert ANSI not in result.output


def test_chat_ignores_empty_input_and_leaves_at_end_of_input() -> None:
    fake = FakeChat()
    result = run(["chat"], "\n   \n\t\nHello\n\n", model=fake)

    assert result.exit_code == 0, result.output
    assert len(fake.calls) == 1
    assert [m for _, m in saved()] == [[("human", "Hello"), ("ai", "You said: Hello")]]


def test_chat_multiline_input_by_backslash_and_by_fence() -> None:
    fake = FakeChat()
    text = "first line\\\nsecond line\n```python\ndef f():\n\n    return 1\n```\n/quit\n"
    result = run(["chat"], text, model=fake)

    assert result.exit_code == 0, result.output
    sent = [model_texts(call)[-1][1] for call in fake.calls]
    assert sent == ["first line\nsecond line", "```python\ndef f():\n\n    return 1\n```"]


def test_chat_double_slash_sends_a_message_that_starts_with_a_slash() -> None:
    fake = FakeChat()
    result = run(["chat"], "//usr/bin is a directory\n/quit\n", model=fake)

    assert result.exit_code == 0
    assert model_texts(fake.calls[0])[-1][1] == "/usr/bin is a directory"


def test_unknown_slash_command_gets_a_hint_and_the_chat_goes_on() -> None:
    fake = FakeChat()
    result = run(["chat"], "/histroy\n/frobnicate\nstill here\n/quit\n", model=fake)

    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "Error: Unknown command /histroy. Did you mean /history? Type /help for the list.",
        "Error: Unknown command /frobnicate. Type /help for the list.",
    ]
    assert "You said: still here" in result.stdout
    assert len(fake.calls) == 1


def test_help_lists_every_slash_command() -> None:
    result = run(["chat"], "/help\n/quit\n")

    for command in (
        "/help", "/new", "/persona", "/personas", "/history", "/threads", "/switch",
        "/export", "/quit",
    ):  # fmt: skip
        assert command in result.stdout


def test_persona_commands_list_show_and_reject_unknown_names() -> None:
    fake = FakeChat()
    result = run(["chat"], "/personas\n/persona\n/persona nope\n/persona tutor\nHi\n/quit\n", fake)

    assert result.exit_code == 0
    out = result.stdout
    for name in load_personas():
        assert name in out
    assert "*  assistant" in out  # the current one is marked
    assert "Persona: assistant" in out
    assert result.stderr.strip() == (
        "Error: Unknown persona 'nope'. Available personas: assistant, code_reviewer, "
        "cooking_assistant, travel_planner, tutor."
    )
    assert saved()[0][0] == "tutor"


def test_new_threads_and_switch_back_by_id_prefix() -> None:
    first = run(["chat"], "one\n/quit\n")
    first_id = thread_ids()[0]

    fake = FakeChat()
    result = run(
        ["chat", "-t", first_id],
        f"/new\ntwo\n/threads\n/switch {first_id[:6]}\nthree\n/quit\n",
        fake,
    )

    assert first.exit_code == 0 and result.exit_code == 0, result.output
    assert "New thread" in result.stdout and "Switched" in result.stdout
    ids = thread_ids()
    assert f"*  {ids[1][:8]}" in result.stdout  # /threads marked the new thread as current
    assert len(ids) == 2 and ids[0] == first_id  # the first thread was updated last
    assert [(m.type, m.text) for m in saved_messages(first_id)] == [
        ("human", "one"),
        ("ai", "You said: one"),
        ("human", "three"),
        ("ai", "You said: three"),
    ]
    assert [(m.type, m.text) for m in saved_messages(ids[1])] == [
        ("human", "two"),
        ("ai", "You said: two"),
    ]
    # The third message reached the model with the first thread's history, not the second's.
    assert [text for _, text in model_texts(fake.calls[-1])[1:]] == [
        "one",
        "You said: one",
        "three",
    ]


def test_threads_command_marks_the_current_thread() -> None:
    result = run(["chat"], "Hello there\n/threads\n/quit\n")

    current = thread_ids()[0]
    table = result.stdout.splitlines()[-3:-1]
    assert table[0].split() == ["thread", "updated", "persona", "messages", "title"]
    assert table[1].startswith(f"*  {current[:8]}")
    assert table[1].endswith("Hello there")


def test_switch_to_a_missing_thread_is_an_error_and_keeps_the_thread() -> None:
    fake = FakeChat()
    result = run(["chat"], "Hi\n/switch nope\n/switch\nagain\n/quit\n", fake)

    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "Error: No saved thread 'nope'. `/threads` lists the saved ones.",
        "Error: Usage: /switch ID (see /threads).",
    ]
    assert [len(m) for _, m in saved()] == [4]


def test_export_writes_markdown_or_json(tmp_path: Path) -> None:
    md, js = tmp_path / "chat.md", tmp_path / "chat.json"
    result = run(["chat"], f"Hello\n/export {md}\n/export {js}\n/quit\n")

    assert result.exit_code == 0, result.output
    assert f"Exported to {md}" in result.stdout
    text = md.read_text()
    assert text.startswith("# Hello") and "You said: Hello" in text
    document = json.loads(js.read_text())
    assert [m["content"] for m in document["messages"]] == ["Hello", "You said: Hello"]


def test_export_before_any_message_says_there_is_nothing_yet(tmp_path: Path) -> None:
    result = run(["chat"], f"/export {tmp_path / 'x.md'}\n/export\n/quit\n")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines.count("Nothing to export yet: this thread has no messages.") == 2
    assert result.stderr == ""
    assert not (tmp_path / "x.md").exists()


def test_history_of_a_new_thread_says_so() -> None:
    result = run(["chat"], "/history\n/quit\n")

    assert "No messages yet." in result.stdout


def test_a_failing_model_reports_one_line_and_keeps_the_history_valid() -> None:
    fake = FakeChat(fail_after_chunks=1)
    result = run(["chat"], "Hi\n/history\n/quit\n", fake)

    assert result.exit_code == 0
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: ")
    assert "Traceback" not in result.output
    assert "No messages yet." in result.stdout  # the failed turn was rolled back
    assert saved() == []


def test_no_stream_prints_the_whole_reply() -> None:
    result = run(["chat", "--no-stream"], "Hi\n/quit\n")

    assert result.stdout.splitlines()[1:3] == ["assistant> Hi", "You said: Hi"]


def test_resuming_a_chat_shows_the_last_exchange() -> None:
    run(["ask", "Plan a weekend in Lisbon"])
    run(["ask", "-c", "Make it cheaper"])
    other = run(["chat"], "Something else\n/quit\n")
    assert other.exit_code == 0

    resumed = run(["chat", "-t", thread_ids()[1][:6]], "/quit\n")
    assert resumed.stdout.splitlines()[1:] == [
        "Last exchange (4 messages; /history shows them all):",
        "you: Make it cheaper",
        "assistant: You said: Make it cheaper",
        "assistant> /quit",
    ]
    fresh = run(["chat"], "/switch " + thread_ids()[1][:6] + "\n/quit\n")
    assert "you: Make it cheaper" in fresh.stdout.splitlines()[3:5]
    latest = run(["chat", "-c"], "/quit\n")
    assert latest.stdout.splitlines()[2:4] == [
        "you: Something else",
        "assistant: You said: Something else",
    ]
    new = run(["chat"], "/quit\n")
    assert "Last exchange" not in new.stdout


def test_export_without_a_path_writes_into_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started_in = tmp_path / "repository"
    started_in.mkdir()
    monkeypatch.chdir(started_in)
    result = run(["chat"], "Hello\n/export\n/quit\n")

    assert list(started_in.iterdir()) == []  # nothing lands where chat was started

    assert result.exit_code == 0, result.output
    home = Path(os.environ["AGENT_HOME"])
    written = home / "exports" / f"thread-{thread_ids()[0][:8]}.md"
    assert f"Exported to {written}" in result.stdout.splitlines()
    assert "You said: Hello" in written.read_text(encoding="utf-8")


def test_piped_chat_output_separates_the_exchanges() -> None:
    fake = FakeChat(reply=lambda messages: f"Line one.\n\nAbout {messages[-1].text}.")
    result = run(["chat"], "First\n\nSecond\nthird line\\\nof it\n", model=fake)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "assistant> First",
        "Line one.",
        "",
        "About First.",
        "assistant> Second",
        "Line one.",
        "",
        "About Second.",
        "assistant> third line",
        "of it",
        "Line one.",
        "",
        "About third line",
        "of it.",
    ]


# --- chat/ask: options and errors -------------------------------------------------------------


def test_continue_resumes_the_most_recent_thread() -> None:
    run(["ask", "first"])
    run(["ask", "other"])
    fake = FakeChat()
    result = run(["chat", "-c"], "and more\n/quit\n", fake)

    assert result.exit_code == 0
    assert [text for _, text in model_texts(fake.calls[0])[1:]] == [
        "other",
        "You said: other",
        "and more",
    ]


@pytest.mark.parametrize("command", [["chat"], ["ask", "hi"]])
def test_unknown_persona_is_a_usage_error_listing_personas(command: list[str]) -> None:
    result = run([command[0], "-p", "nope", *command[1:]])

    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "Unknown persona 'nope'" in lines[0]
    assert "assistant, code_reviewer, cooking_assistant, travel_planner, tutor" in lines[0]


@pytest.mark.parametrize("command", [["chat"], ["ask", "hi"]])
@pytest.mark.parametrize("option", [["-t", "nope"], ["--thread", "nope"]])
def test_missing_thread_is_a_runtime_error(command: list[str], option: list[str]) -> None:
    result = run([command[0], *option, *command[1:]])

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: No saved thread 'nope'. `agent threads list` lists the saved ones.\n"
    )


@pytest.mark.parametrize("empty", ["", "  "])
@pytest.mark.parametrize("command", [["chat"], ["ask", "hi"]])
def test_an_empty_thread_id_is_refused_not_a_new_thread(command: list[str], empty: str) -> None:
    fake = FakeChat()
    run(["ask", "An earlier thread"])  # a prefix of '' would match it
    result = run([command[0], "-t", empty, *command[1:]], "Hi\n", model=fake)

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Invalid value for '-t' / '--thread': the thread id")
    assert len(result.stderr.splitlines()) == 1
    assert fake.calls == [] and len(thread_ids()) == 1


def test_thread_hints_name_commands_that_exist() -> None:
    with open_memory() as memory:
        for thread_id in ("abc-1", "abc-2"):
            Chatbot(thread_id=thread_id, chat_model=FakeChat(), memory=memory).say("Hi")
    result = run(["chat"], "/switch nope\n/switch abc\n/quit\n")

    assert result.stderr.splitlines() == [
        "Error: No saved thread 'nope'. `/threads` lists the saved ones.",
        "Error: Thread id prefix 'abc' matches 2 threads; type more of it. `/threads` lists them.",
    ]
    for args in (["threads", "show", "nope"], ["ask", "-t", "abc", "hi"]):
        assert "`agent threads list` lists" in run(args).stderr
    assert run(["threads", "list"]).exit_code == 0  # the command the hint names exists


def test_continue_with_nothing_saved_is_a_runtime_error() -> None:
    result = run(["ask", "-c", "hi"])

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No saved thread to continue")


def test_thread_and_continue_together_is_a_usage_error() -> None:
    result = run(["ask", "-c", "-t", "x", "hi"])

    assert result.exit_code == 2
    assert "either -t/--thread or -c/--continue" in result.stderr


def test_unknown_option_is_one_line_with_a_pointer_to_help() -> None:
    result = run(["chat", "--bogus"])

    assert result.exit_code == 2
    assert result.stderr == "Error: No such option '--bogus'. (see 'agent chat -h')\n"


@pytest.mark.parametrize("question", ["", "   ", "\n"])
def test_ask_with_an_empty_question_is_a_usage_error(question: str) -> None:
    fake = FakeChat()
    result = run(["ask", question], model=fake)

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: The question is empty.")
    assert fake.calls == [] and saved() == []


def test_ask_prints_the_reply_and_saves_a_thread() -> None:
    result = run(["ask", "What", "is", "a", "list?"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "You said: What is a list?\n"
    assert saved() == [
        ("assistant", [("human", "What is a list?"), ("ai", "You said: What is a list?")])
    ]


@pytest.mark.parametrize("args", [["ask"], ["ask", "-"]])
def test_ask_reads_the_question_from_stdin(args: list[str]) -> None:
    result = run(args, "a question\nover two lines\n")

    assert result.exit_code == 0
    assert result.stdout == "You said: a question\nover two lines\n\n"


def test_ask_json_and_thread_continue_a_conversation_from_scripts() -> None:
    first = run(["ask", "--json", "-p", "tutor", "Hi"])
    document = json.loads(first.stdout)
    assert document["reply"] == "You said: Hi" and document["persona"] == "tutor"

    fake = FakeChat()
    second = run(["ask", "--print-thread", "-t", document["thread_id"][:8], "Again"], model=fake)

    assert second.exit_code == 0
    assert second.stderr == document["thread_id"] + "\n"
    assert [text for _, text in model_texts(fake.calls[0])[1:]] == ["Hi", "You said: Hi", "Again"]
    assert saved()[0][0] == "tutor"  # the thread keeps its persona


def test_ask_model_failure_is_one_line_exit_1_and_saves_nothing() -> None:
    result = run(["ask", "Hi"], model=FakeChat(fail_after_chunks=0))

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert saved() == []


# --- Ctrl-C -----------------------------------------------------------------------------------


class InterruptingChat(FakeChat):
    """Streams many chunks and presses Ctrl-C (SIGINT to this process) after the second one.

    It then waits until the press has reached the Chatbot (its stop switch is pressed), so the
    reply is cut at the next chunk however slowly the main thread gets to the signal.
    """

    interrupt_at: int = 2  # the chunk after which Ctrl-C is pressed

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        callbacks = ensure_config().get("callbacks")  # the run's: it carries the stop switch
        handlers = callbacks.handlers if isinstance(callbacks, BaseCallbackManager) else []
        switches = [handler for handler in handlers if isinstance(handler, StopSwitch)]
        assert switches, "the Chatbot passes its stop switch as a callback"
        for number, chunk in enumerate(super()._stream(messages, stop, run_manager, **kwargs)):
            if number == self.interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)
                assert switches[0].pressed.wait(timeout=600), "Ctrl-C never reached the Chatbot"
            yield chunk


def long_reply(messages: Sequence[BaseMessage]) -> str:
    return "word " * 400


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C as in a terminal's foreground job, whatever this process inherited.

    `make test &` (a background job of a non-interactive shell) starts pytest with SIGINT
    ignored; the tests below need the disposition a user's terminal gives the CLI.
    """
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_ctrl_c_during_a_chat_reply_keeps_the_partial_reply_and_the_chat(
    default_sigint: None,
) -> None:
    fake = InterruptingChat(reply=long_reply, chunk_size=5)
    result = run(["chat"], "Tell me a story\n/history\n/quit\n", fake)

    assert result.exit_code == 0, result.output
    assert "[interrupted]" in result.stdout
    messages = saved_messages(thread_ids()[0])
    assert [m.type for m in messages] == ["human", "ai"]
    assert messages[1].response_metadata.get("interrupted") is True
    assert 0 < len(messages[1].text) < len(long_reply([]))
    assert "assistant: word word" in result.stdout  # /history ran after the interruption


def test_ctrl_c_during_ask_saves_the_partial_reply_and_exits_130(default_sigint: None) -> None:
    fake = InterruptingChat(reply=long_reply, chunk_size=5)
    result = run(["ask", "Tell me a story"], model=fake)

    assert result.exit_code == 130
    messages = saved_messages(thread_ids()[0])
    assert messages[1].response_metadata.get("interrupted") is True
    assert 0 < len(messages[1].text) < len(long_reply([]))


def test_a_second_ctrl_c_raises_keyboard_interrupt(default_sigint: None) -> None:
    stops: list[bool] = []

    class Bot:
        def stop(self) -> None:
            stops.append(True)

    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_stops(Bot()) as request:  # type: ignore[arg-type]
            signal.raise_signal(signal.SIGINT)  # the handler has run when this returns
            assert request.stopped and stops == [True]
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- threads, personas, db --------------------------------------------------------------------


def test_threads_list_show_export_delete() -> None:
    run(["ask", "-p", "tutor", "First question"])
    run(["ask", "Second question"])
    first, second = reversed(thread_ids())

    listing = run(["threads", "list"])
    assert listing.exit_code == 0
    rows = listing.stdout.splitlines()
    assert rows[0].split() == ["thread", "updated", "persona", "messages", "title"]
    assert rows[1].startswith(second[:8]) and rows[1].endswith("Second question")
    assert rows[2].startswith(first[:8]) and " tutor " in rows[2]

    as_json = json.loads(run(["threads", "list", "--json"]).stdout)
    assert [(t["id"], t["persona"], t["messages"]) for t in as_json] == [
        (second, "assistant", 2),
        (first, "tutor", 2),
    ]

    shown = run(["threads", "show", first[:5]])
    assert shown.stdout.splitlines()[1:] == [
        "you: First question",
        "assistant: You said: First question",
    ]
    shown_json = json.loads(run(["threads", "show", "--json", first]).stdout)
    assert shown_json["thread"]["id"] == first
    assert [m["role"] for m in shown_json["messages"]] == ["user", "assistant"]

    markdown = run(["threads", "export", first])
    assert markdown.stdout.startswith("# First question")
    exported = json.loads(run(["threads", "export", first, "--format", "json"]).stdout)
    assert exported["messages"][1]["content"] == "You said: First question"

    deleted = run(["threads", "delete", first])
    assert deleted.exit_code == 0 and first in deleted.stdout
    assert thread_ids() == [second]
    assert run(["threads", "show", first]).exit_code == 1


def test_threads_export_to_a_file(tmp_path: Path) -> None:
    run(["ask", "Hello"])
    target = tmp_path / "out.json"
    result = run(["threads", "export", thread_ids()[0], "-f", "json", "-o", str(target)])

    assert result.exit_code == 0
    assert json.loads(target.read_text())["messages"][0]["content"] == "Hello"


def test_threads_list_when_empty_and_ambiguous_prefix() -> None:
    empty = run(["threads", "list"])
    assert "No saved threads yet" in empty.stdout
    assert json.loads(run(["threads", "list", "--json"]).stdout) == []

    for _ in range(20):  # 20 ids: some pair shares its first hex digit
        run(["ask", "x"])
    ids = thread_ids()
    prefix = next(i[0] for i in ids if sum(j.startswith(i[0]) for j in ids) > 1)
    result = run(["threads", "show", prefix])
    assert result.exit_code == 1
    assert "matches" in result.stderr and "type more of it" in result.stderr


@pytest.mark.parametrize("command", ["show", "delete", "export"])
def test_threads_commands_on_a_missing_thread_exit_1(command: str) -> None:
    result = run(["threads", command, "nope"])

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: No saved thread 'nope'. `agent threads list` lists the saved ones.\n"
    )


def test_personas_list_and_show() -> None:
    listing = run(["personas", "list"])
    assert listing.exit_code == 0
    assert {line.split()[0] for line in listing.stdout.splitlines()[1:]} == set(load_personas())

    names = [p["name"] for p in json.loads(run(["personas", "list", "--json"]).stdout)]
    assert names == sorted(load_personas())

    shown = run(["personas", "show", "tutor"])
    assert "Python tutor" in shown.stdout and "user_name" in shown.stdout
    document = json.loads(run(["personas", "show", "tutor", "--json"]).stdout)
    assert document["variables"]["user_name"] == "the learner"

    missing = run(["personas", "show", "nope"])
    assert missing.exit_code == 2 and "Available personas" in missing.stderr


def test_personas_list_shows_broken_files_to_the_operator_with_their_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.toml").write_text("system = 42\n")
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path))
    listing = run(["personas", "list"])
    assert listing.exit_code == 0 and "tutor" in listing.stdout
    assert "Persona 'broken' is unavailable" in listing.stderr
    assert str(tmp_path / "broken.toml") in listing.stderr


def test_db_migrate_creates_the_database(tmp_path: Path) -> None:
    target = tmp_path / "fresh.db"
    result = CliRunner().invoke(cli, ["--db", str(target), "db", "migrate"], obj=Services())

    assert result.exit_code == 0, result.output
    assert target.exists() and str(target) in result.stdout


def test_db_option_and_env_var_choose_the_database(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    result = CliRunner().invoke(
        cli, ["ask", "hi"], obj=Services(chat_model=FakeChat()), env={"AGENT_DB_URL": str(target)}
    )

    assert result.exit_code == 0
    with open_memory(str(target)) as memory:
        assert len(list_threads(memory)) == 1
    assert saved() == []  # nothing went to the default database


def test_only_a_typed_db_option_is_passed_on_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AGENT_DB_URL is left to memory, so its errors name AGENT_DB_URL and --db errors do not."""
    opened: list[str | None] = []
    monkeypatch.setattr(
        Services, "open_memory", lambda self: opened.append(self.db_url) or open_memory("memory")
    )
    target = str(tmp_path / "typed.db")
    CliRunner().invoke(cli, ["threads", "list"], obj=Services(), env={"AGENT_DB_URL": target})
    CliRunner().invoke(cli, ["--db", target, "threads", "list"], obj=Services())

    assert opened == [None, target]


def test_a_database_error_names_the_setting_the_user_actually_used(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    url = str(not_a_dir / "agent.db")
    typed = run(["--db", url, "threads", "list"])
    from_env = CliRunner().invoke(
        cli, ["threads", "list"], obj=Services(chat_model=FakeChat()), env={"AGENT_DB_URL": url}
    )

    for result in (typed, from_env):
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: Cannot open the database")
        assert len(result.stderr.splitlines()) == 1
    assert "AGENT_DB_URL" not in typed.stderr and "--db" in typed.stderr
    assert "Check AGENT_DB_URL" in from_env.stderr


def test_bad_database_url_is_one_line() -> None:
    result = run(["--db", "mysql://x", "threads", "list"])

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Unsupported database URL") and "\n" == result.stderr[-1]
    assert len(result.stderr.splitlines()) == 1


# --- help and version -------------------------------------------------------------------------


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *all_commands(cli)], ids=lambda p: " ".join(p) or "agent")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help(path: tuple[str, ...], flag: str) -> None:
    result = run([*path, flag])

    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: agent {' '.join(path)}".rstrip())


def test_help_has_examples_and_chat_help_documents_env_vars() -> None:
    assert "Examples:" in run(["-h"]).stdout
    assert "Examples:" in run(["ask", "-h"]).stdout
    chat_help = run(["chat", "-h"]).stdout
    assert "Examples:" in chat_help
    for variable in (
        "AGENT_PERSONA", "AGENT_MODEL", "AGENT_TEMPERATURE", "OPENAI_BASE_URL", "OPENAI_API_KEY",
        "AGENT_BACKEND", "AGENT_DB_URL", "AGENT_HOME", "AGENT_MAX_TURNS", "AGENT_PERSONAS_DIR",
    ):  # fmt: skip
        assert variable in chat_help


def test_version() -> None:
    result = run(["--version"])

    assert result.exit_code == 0
    assert result.stdout.startswith("agent, version ")


def test_model_and_temperature_options_reach_the_chatbot(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    original = Services.chatbot

    def spy(self: Services, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Services, "chatbot", spy)
    run(["ask", "-m", "tiny", "--temperature", "0.2", "hi"])
    CliRunner().invoke(
        cli, ["ask", "hi"], obj=Services(chat_model=FakeChat()), env={"AGENT_MODEL": "from-env"}
    )

    assert seen[0] == {"persona_vars": {}, "model": "tiny", "temperature": 0.2}
    assert seen[1]["model"] == "from-env"


def test_bad_temperature_is_a_usage_error() -> None:
    result = run(["ask", "--temperature", "9", "hi"])

    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1


def test_only_an_in_process_embedded_model_needs_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.cli.services import Services

    assert Services().needs_model_load()  # nothing set: the embedded model, loaded here
    monkeypatch.setenv("AGENT_BACKEND", "embedded")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # `agent model serve` elsewhere
    assert not Services().needs_model_load()
    monkeypatch.delenv("AGENT_BACKEND")
    assert not Services().needs_model_load()  # any OpenAI-compatible server


# --- persona variables (issue 12.7) -----------------------------------------------------------

PIRATE = """\
description = "A pirate."
system = "You are a pirate talking with {name}. Say {greeting}."
[variables]
greeting = "Arr"
"""


@pytest.fixture
def pirate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user persona with a variable that has no default (`name`) and one that has."""
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "pirate.toml").write_text(PIRATE, encoding="utf-8")
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path / "personas"))


def system_prompt(call: list[BaseMessage]) -> str:
    kind, text = model_texts(call)[0]
    assert kind == "system"
    return text


@pytest.mark.usefixtures("pirate")
def test_ask_sets_persona_variables_with_var() -> None:
    fake = FakeChat()
    result = run(
        ["ask", "-p", "pirate", "--var", "name=Anne Bonny", "--var", "greeting=Ahoy", "Hi"],
        model=fake,
    )

    assert result.exit_code == 0, result.output
    assert system_prompt(fake.calls[0]) == "You are a pirate talking with Anne Bonny. Say Ahoy."
    follow_up = FakeChat()
    again = run(["ask", "-c", "And now?"], model=follow_up)  # the thread keeps its values
    assert again.exit_code == 0, again.output
    assert "Anne Bonny" in system_prompt(follow_up.calls[0])


@pytest.mark.usefixtures("pirate")
@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "needs the variable 'name'"),
        (["--var", "nme=Anne"], "(did you mean 'name'?)"),
        (["--var", "Anne"], "'Anne' is not KEY=VALUE"),
        (["--var", "=Anne"], "'=Anne' is not KEY=VALUE"),
    ],
)
def test_bad_or_missing_var_is_a_one_line_usage_error(args: list[str], says: str) -> None:
    fake = FakeChat()
    result = run(["ask", "-p", "pirate", *args, "Hi"], model=fake)

    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and says in result.stderr
    assert "--var" in result.stderr
    assert fake.calls == [] and thread_ids() == []


def test_var_the_persona_does_not_declare_is_refused_for_the_default_persona_too() -> None:
    result = run(["chat", "--var", "mood=happy"], "Hi\n")

    assert result.exit_code == 2
    assert "Persona 'assistant' has no variable(s) 'mood'" in result.stderr


@pytest.mark.usefixtures("pirate")
def test_chat_persona_command_sets_variables_and_new_keeps_them() -> None:
    fake = FakeChat()
    script = [
        "/persona pirate",  # `name` has no value yet: refused, with the command to type
        '/persona pirate name="Anne Bonny"',
        "/persona",
        "Hi",
        "/persona greeting=Yo-ho",  # no NAME: set a variable of the current persona
        "Again",
        "/persona code_reviewer",  # pirate's variables are not the reviewer's: dropped
        "Review this",
        "/new",
        "/persona pirate name=Mary",
        "/new",  # the new thread keeps the persona and its values
        "Hello",
        "/persona pirate name='unclosed",
        "/quit",
    ]
    result = run(["chat"], "\n".join(script) + "\n", model=fake)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Persona: pirate (name=Anne Bonny) (from the next message on)" in lines
    assert "Persona: pirate (name=Anne Bonny)" in lines
    assert "Persona: pirate (greeting=Yo-ho, name=Anne Bonny) (from the next message on)" in lines
    prompts = [system_prompt(call) for call in fake.calls]
    assert prompts[0] == "You are a pirate talking with Anne Bonny. Say Arr."
    assert prompts[1] == "You are a pirate talking with Anne Bonny. Say Yo-ho."
    assert prompts[2].startswith("You are an experienced, constructive code reviewer")
    assert prompts[3] == "You are a pirate talking with Mary. Say Arr."
    assert result.stderr.splitlines() == [
        "Error: Persona 'pirate' needs the variable 'name': /persona pirate name=...",
        'Error: No closing quotation in "pirate name=\'unclosed". '
        "Usage: /persona [NAME] [KEY=VALUE ...]",
    ]


def code_reply(messages: Sequence[BaseMessage]) -> str:
    if messages[-1].text != "Show me code":
        return "Sure."
    return "Here it is:\n\n```python\n" + "total = total + 1\n" * 200 + "```\n"


def test_export_of_a_reply_stopped_inside_a_code_block_closes_the_fence(tmp_path: Path) -> None:
    fake = InterruptingChat(reply=code_reply, chunk_size=5, interrupt_at=10)
    path = tmp_path / "chat.md"
    result = run(["chat"], f"Show me code\nAnd then?\n/export {path}\n/quit\n", fake)

    assert result.exit_code == 0, result.output
    exported = path.read_text(encoding="utf-8")
    shell = run(["threads", "export", thread_ids()[0]]).stdout
    assert shell == exported
    tokens = MarkdownIt().parse(exported)
    code = [token.content for token in tokens if token.type == "fence"]
    assert len(code) == 1 and "**User:**" not in code[0]  # the next message is not code
    speakers = [t.content for t in tokens if t.type == "inline" and t.content.startswith("**")]
    assert speakers == [
        "**User:**",
        "**Assistant:** _(interrupted)_",
        "**User:**",
        "**Assistant:**",
    ]


# --- a window that evicts, a reply the length limit cut (issues 12.2, 12.3) -------------------


class CuttingChat(FakeChat):
    """A model whose first reply hits the length limit (marked as PLAN decision 4 says)."""

    cut_tokens: int = 7

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        chunks = list(super()._chunks(messages))
        if len(self.calls) == 1:  # only the first reply is cut
            meta = {"cut": True, "reply_tokens": self.cut_tokens, "finish_reason": "length"}
            chunks[-1] = AIMessageChunk(content=chunks[-1].content, response_metadata=meta)
        yield from chunks


def cut_story(messages: Sequence[BaseMessage]) -> str:
    if messages[-1].text == CONTINUE_PROMPT:
        return "and they lived happily."
    return "Once upon a time" if len(messages) <= 2 else "Another answer."


def test_a_cut_reply_is_marked_everywhere_and_continue_goes_on(tmp_path: Path) -> None:
    fake = CuttingChat(reply=cut_story)
    path = tmp_path / "story.md"
    script = "Tell a story\n/history\n/continue\n/continue\n/export " + str(path) + "\n/quit\n"
    result = run(["chat"], script, model=fake)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Once upon a time [cut at 7 tokens]" in lines
    assert "assistant: Once upon a time [cut at 7 tokens]" in lines  # /history
    assert "and they lived happily." in lines  # /continue streamed the rest
    assert model_texts(fake.calls[1])[-1] == ("human", CONTINUE_PROMPT)
    assert result.stderr.splitlines() == [  # the second /continue: the reply was complete
        "Error: Nothing to continue: the last reply was complete. Only a reply cut by the "
        "reply-token limit or stopped early can be continued."
    ]
    assert "**Assistant:** _(cut at 7 tokens)_" in path.read_text(encoding="utf-8")
    exported = json.loads(run(["threads", "export", thread_ids()[0], "-f", "json"]).stdout)
    assert exported["messages"][1] == {
        "role": "assistant",
        "content": "Once upon a time",
        "cut": True,
        "reply_tokens": 7,
    }


def test_ask_marks_a_cut_reply_and_says_so_in_json() -> None:
    plain = run(["ask", "Tell a story"], model=CuttingChat(reply=cut_story))
    assert plain.stdout == "Once upon a time [cut at 7 tokens]\n"

    as_json = json.loads(run(["ask", "--json", "Tell a story"], model=CuttingChat()).stdout)
    assert as_json["cut"] is True
    assert json.loads(run(["ask", "--json", "Hi"]).stdout)["cut"] is False


def test_chat_says_when_the_window_evicts_and_history_shows_where_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_MAX_TURNS", "2")
    fake = FakeChat()
    result = run(["chat"], "one\ntwo\nthree\n/history\n/quit\n", model=fake)

    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if "earlier exchange" in line]
    # After "two" the window evicted "one" (issue 14: after the reply, so turn "three" still
    # sees "two"); after "three" it evicted "two", which the next turn would report.
    assert notes == [
        "1 earlier exchange moved out of the model's window; /history shows what it sees"
    ]
    history = result.stdout.split("assistant> /history\n", 1)[1].splitlines()
    assert history[:7] == [
        "you: one",
        "assistant: You said: one",
        "you: two",
        "assistant: You said: two",
        "── the model sees from here on (above: moved out of its window) ──",
        "you: three",
        "assistant: You said: three",
    ]
    sent = model_texts(chat_calls(fake.calls)[2])[1:]
    assert [text for _, text in sent] == ["two", "You said: two", "three"]


def test_ask_notes_an_eviction_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_MAX_TURNS", "2")
    run(["ask", "one"])
    run(["ask", "-c", "two"])
    third = run(["ask", "-c", "three"])

    assert third.stdout == "You said: three\n"
    # "one" left after the reply to "two" (issue 14: evictions happen after a reply), so the
    # third question is the turn whose window lost it; "two" leaves after this reply.
    assert third.stderr == (
        "Note: 1 earlier exchange moved out of the model's window; it no longer sees them "
        "(the thread keeps them).\n"
    )


def test_services_close_their_chatbots_before_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Chatbot may still use the memory after its reply (background work): it closes first."""
    order: list[str] = []
    monkeypatch.setattr(Chatbot, "close", lambda self: order.append(f"bot {self.thread_id}"))
    services = Services(chat_model=FakeChat())
    first, second = services.chatbot(thread_id="one"), services.chatbot(thread_id="two")
    memory = services.open_memory()
    monkeypatch.setattr(memory, "close", lambda: order.append("memory"))
    services.close()

    assert order == ["bot two", "bot one", "memory"]
    assert (first.thread_id, second.thread_id) == ("one", "two")
