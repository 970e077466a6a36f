"""Memory without a database server: URL parsing, locks, transcript, threads, in-memory Chatbot."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.store.memory import InMemoryStore

from agent import Chatbot
from agent.memory import (
    DatabaseURLError,
    Location,
    StoreArchive,
    ThreadInfo,
    ThreadNotFoundError,
    delete_thread,
    export_thread,
    get_thread,
    list_threads,
    open_memory,
    parse_location,
    transcript,
)
from agent.memory.config import redact
from agent.memory.locking import lock_key
from agent.memory.threads import (
    THREADS,
    begin_turn,
    end_turn,
    export_markdown,
    merge_transcript,
    new_record,
    now,
    title_from,
    updated_record,
)
from tests.fakes import FakeChat


def texts(messages: list[BaseMessage]) -> list[str]:
    return [str(m.text) for m in messages]


# --- where memory lives -----------------------------------------------------------------------


def test_unset_url_means_the_sqlite_file_in_agent_home(tmp_path: Path) -> None:
    assert parse_location() == Location("sqlite", str(tmp_path / "agent-home" / "agent.db"))


def test_without_agent_home_the_platform_data_dir_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs import user_data_dir

    monkeypatch.delenv("AGENT_HOME")
    assert parse_location().target == str(
        Path(user_data_dir("agent", appauthor=False)) / "agent.db"
    )


def test_agent_db_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_DB_URL", "postgresql://me:secret@db:5432/agent")
    assert parse_location() == Location("postgres", "postgresql://me:secret@db:5432/agent")
    assert parse_location().describe() == "postgresql://me:***@db:5432/agent"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory", Location("memory", "memory")),
        (":memory:", Location("memory", "memory")),
        ("chats.db", Location("sqlite", "chats.db")),
        ("/var/lib/agent/chats.db", Location("sqlite", "/var/lib/agent/chats.db")),
        ("sqlite:///chats.db", Location("sqlite", "chats.db")),
        ("sqlite:////var/lib/agent/chats.db", Location("sqlite", "/var/lib/agent/chats.db")),
        ("postgres://u@h/db", Location("postgres", "postgres://u@h/db")),
        ("postgresql://u@h:5432/db", Location("postgres", "postgresql://u@h:5432/db")),
    ],
)
def test_database_urls(url: str, expected: Location) -> None:
    assert parse_location(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:", "sqlite:relative.db", "redis://h"])
def test_unsupported_urls_fail_clearly(url: str) -> None:
    with pytest.raises(DatabaseURLError, match="Unsupported database URL.*postgresql://"):
        parse_location(url)


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_keep_checkpoints_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep_checkpoints"):
        open_memory("memory", keep_checkpoints=0)


# --- locks (sync/async behaviours are in test_memory_parity.py) -------------------------------


def test_lock_keys_are_stable_signed_64_bit() -> None:
    assert lock_key("abc") == lock_key("abc") != lock_key("abd")
    assert -(2**63) <= lock_key("abc") < 2**63


# --- transcript pieces ------------------------------------------------------------------------


def test_merge_transcript_keeps_order_and_drops_repeats() -> None:
    a, b, c = HumanMessage("a", id="1"), AIMessage("b", id="2"), HumanMessage("c", id="3")
    assert texts(merge_transcript([a, b], [b, c])) == ["a", "b", "c"]


def test_archive_reads_the_first_count_entries_in_order() -> None:
    archive = StoreArchive(InMemoryStore())
    archive.append("t", 0, [HumanMessage(f"m{n}") for n in range(3)])
    archive.append("t", 3, [HumanMessage(f"m{n}") for n in range(3, 1203)])
    assert texts(archive.read("t")) == [f"m{n}" for n in range(1203)]
    assert texts(archive.read("t", 2)) == ["m0", "m1"]
    archive.append("t", 1, [HumanMessage("again")])  # a retried append overwrites, never adds
    assert len(archive.read("t")) == 1203
    archive.delete("t")
    assert archive.read("t") == []


def test_titles_are_one_short_line() -> None:
    assert title_from("  Plan a\n trip   to Rome ") == "Plan a trip to Rome"
    assert len(title_from("x" * 200)) == 60 and title_from("x" * 200).endswith("…")


def test_a_record_counts_archived_plus_window() -> None:
    record = {"title": "t", "persona": "", "messages": 0, "created_at": "c", "updated_at": "c"}
    values = {"messages": [HumanMessage("a"), AIMessage("b")], "archived": 6, "persona": "tutor"}
    updated = updated_record(record, values, "later")
    assert updated == {**record, "persona": "tutor", "messages": 8, "updated_at": "later"}


def test_markdown_export_marks_speakers_and_interruptions() -> None:
    info = ThreadInfo("t1", "Hi", "tutor", 2, datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC))
    cut = AIMessage("Hel", response_metadata={"interrupted": True})
    text = export_markdown(info, [HumanMessage("Hi"), cut])
    assert text.startswith("# Hi\n")
    assert "**User:**\n\nHi" in text and "**Assistant:** _(interrupted)_\n\nHel" in text


# --- the Chatbot on in-memory memory ------------------------------------------------------------


def memory_bot(delay: float = 0.0, **kwargs: object) -> tuple[Chatbot, FakeChat]:
    model = FakeChat(delay=delay)
    memory = open_memory("memory")
    return Chatbot(chat_model=model, memory=memory, **kwargs), model  # type: ignore[arg-type]


def test_transcript_is_archive_then_window_with_an_interrupted_reply_once() -> None:
    bot, _ = memory_bot(delay=0.005, max_turns=2, low_water=0.5)
    bot.say("one")
    stream = bot.stream("two")
    next(stream)
    stream.close()  # the consumer stops: a partial, flagged reply is saved
    for text in ("three", "four", "five"):
        bot.say(text)
    values = bot.graph.get_state(bot.config).values
    assert values["archived"] > 0  # evictions happened
    full = bot.transcript()
    assert texts(full)[::2] == ["one", "two", "three", "four", "five"]
    assert len({m.id for m in full}) == len(full) == 10
    partial = full[3]
    assert partial.response_metadata.get("interrupted") and texts([partial]) == ["You "]
    assert texts(full) == texts(asyncio.run(bot.atranscript()))


async def test_async_turns_save_and_record_the_thread() -> None:
    bot, model = memory_bot()
    assert await bot.asay("hello") == "You said: hello"
    pieces = [piece async for piece in bot.astream("again")]
    assert "".join(pieces) == "You said: again"
    assert texts(await bot.atranscript()) == [
        "hello",
        "You said: hello",
        "again",
        "You said: again",
    ]
    info = get_thread(bot.memory, bot.thread_id)
    assert (info.title, info.messages, info.persona) == ("hello", 4, "assistant")


async def test_async_early_stop_saves_the_partial_reply_inside_the_turn() -> None:
    bot, _ = memory_bot(delay=0.005)
    stream = bot.astream("tell me")
    assert await anext(stream) == "You "
    await stream.aclose()
    saved = bot.transcript()
    assert texts(saved) == ["tell me", "You "]
    assert saved[1].response_metadata.get("interrupted")
    with bot.memory.locks.hold(bot.thread_id, timeout=0):  # the lock was released
        pass


def test_a_failed_first_turn_leaves_no_listed_thread() -> None:
    memory = open_memory("memory")
    bot = Chatbot(chat_model=FakeChat(fail_after_chunks=1), memory=memory)
    with pytest.raises(ConnectionError):
        bot.say("hello")
    assert list_threads(memory) == []
    assert memory.store.get(THREADS, bot.thread_id) is None


def test_threads_list_get_export_delete() -> None:
    memory = open_memory("memory")
    first = Chatbot("tutor", "t-1", chat_model=FakeChat(), memory=memory)
    first.say("Teach me Python please")
    second = Chatbot(thread_id="t-2", chat_model=FakeChat(), memory=memory)
    second.say("Plan a trip")
    second.say("To Rome")
    listed = list_threads(memory)
    assert [(t.id, t.title, t.persona, t.messages) for t in listed] == [
        ("t-2", "Plan a trip", "assistant", 4),
        ("t-1", "Teach me Python please", "tutor", 2),
    ]
    assert list_threads(memory, limit=1)[0].id == "t-2"
    assert listed[0].created_at <= listed[0].updated_at
    exported = json.loads(export_thread(memory, "t-2", "json"))
    assert exported["thread"]["title"] == "Plan a trip"
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant"] * 2
    assert "**Assistant:**\n\nYou said: To Rome" in export_thread(memory, "t-2", "markdown")
    assert texts(transcript(memory, "t-2")) == texts(second.transcript())
    assert delete_thread(memory, "t-2") is True
    assert [t.id for t in list_threads(memory)] == ["t-1"]
    assert second.transcript() == []
    assert delete_thread(memory, "t-2") is False
    with pytest.raises(ThreadNotFoundError, match="t-2"):
        get_thread(memory, "t-2")
    with pytest.raises(ValueError, match="Unknown export format"):
        export_thread(memory, "t-1", "pdf")  # type: ignore[arg-type]


def test_a_record_left_at_zero_by_a_crash_is_healed_when_listed() -> None:
    memory = open_memory("memory")
    bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
    bot.say("hi")
    stale = dict(memory.store.get(THREADS, "t").value)  # type: ignore[union-attr]
    memory.store.put(THREADS, "t", {**stale, "messages": 0})  # as if killed before end_turn
    assert list_threads(memory)[0].messages == 2
    assert get_thread(memory, "t").messages == 2


def test_chatbot_opens_its_own_memory_and_closes_it() -> None:
    with Chatbot(chat_model=FakeChat()) as bot:
        bot.say("hi")
        assert bot.memory.kind == "sqlite"
    assert bot.memory.closers == []


def test_two_threads_in_one_process_take_turns_on_one_thread() -> None:
    memory = open_memory("memory")
    model = FakeChat(delay=0.002)
    bots = [Chatbot(thread_id="same", chat_model=model, memory=memory) for _ in range(2)]
    workers = [threading.Thread(target=bot.say, args=(f"from {n}",)) for n, bot in enumerate(bots)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    saved = texts(bots[0].transcript())
    assert sorted(saved[::2]) == ["from 0", "from 1"]
    assert saved[1] == f"You said: {saved[0]}" and saved[3] == f"You said: {saved[2]}"
    humans_seen = sorted(sum(m.type == "human" for m in call) for call in model.calls)
    assert humans_seen == [1, 2]  # the second turn saw the first: no lost update


# --- per-turn bookkeeping ---------------------------------------------------------------------


def exchange(n: int) -> list[BaseMessage]:
    return [HumanMessage(f"q{n}", id=f"q{n}"), AIMessage(f"a{n}", id=f"a{n}")]


def test_begin_turn_titles_a_new_thread_and_reads_an_existing_one() -> None:
    memory = open_memory("memory")
    record = begin_turn(memory, "t", "Hello  there", "tutor")
    assert (record["title"], record["persona"], record["messages"]) == ("Hello there", "tutor", 0)
    end_turn(memory, "t", record, {"messages": exchange(1), "archived": 0, "persona": "tutor"})
    again = begin_turn(memory, "t", "other", None)
    assert (again["title"], again["messages"]) == ("Hello there", 2)


def test_end_turn_saves_the_count_and_forgets_a_thread_left_empty() -> None:
    memory = open_memory("memory")
    record = new_record("hi", None, now())
    end_turn(memory, "t", record, {"messages": exchange(2), "archived": 4})
    assert get_thread(memory, "t").messages == 6
    stored = dict(memory.store.get(THREADS, "t").value)  # type: ignore[union-attr]
    end_turn(memory, "t", stored, {"messages": []})
    assert memory.store.get(THREADS, "t") is None


def test_a_turn_that_saved_nothing_writes_nothing() -> None:
    """A rolled-back or refused turn leaves the record alone (a read-only file stays unwritten)."""
    memory = open_memory("memory")
    end_turn(memory, "t", new_record("hi", None, now()), {"messages": exchange(1)})
    stored = dict(memory.store.get(THREADS, "t").value)  # type: ignore[union-attr]
    end_turn(memory, "t", stored, {"messages": exchange(1), "persona": stored["persona"]})
    assert memory.store.get(THREADS, "t").value == stored  # type: ignore[union-attr]
    end_turn(memory, "new", new_record("x", None, now()), {"messages": []})
    assert memory.store.get(THREADS, "new") is None
