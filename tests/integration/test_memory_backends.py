"""Durable memory on real SQLite files and a real PostgreSQL server, same tests for both."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from agent import Chatbot
from agent.memory import (
    DatabaseUnavailableError,
    Memory,
    delete_thread,
    export_thread,
    get_thread,
    list_threads,
    migrate,
    open_memory,
)
from agent.memory.aio import aopen_memory
from tests.fakes import FakeChat, chat_calls

pytestmark = pytest.mark.integration


def texts(messages: list[BaseMessage]) -> list[str]:
    return [str(m.text) for m in messages]


@pytest.fixture
def memory(url: str) -> Iterator[Memory]:
    with open_memory(url) as opened:
        yield opened


def count_rows(memory: Memory, table: str, thread_id: str) -> int:
    """Rows a thread has in one of the saver's tables, read with plain SQL."""
    if memory.kind == "sqlite":
        with sqlite3.connect(memory.location.target) as conn:
            return int(
                conn.execute(
                    f"SELECT count(*) FROM {table} WHERE thread_id = ?", (thread_id,)
                ).fetchone()[0]
            )
    import psycopg

    with psycopg.connect(memory.location.target) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,))
        return int(row.fetchone()[0])  # type: ignore[index]


def bot_on(memory: Memory, thread_id: str, **kwargs: Any) -> tuple[Chatbot, FakeChat]:
    model = FakeChat()
    return Chatbot(thread_id=thread_id, chat_model=model, memory=memory, **kwargs), model


# --- a conversation survives the process: every API, every backend ----------------------------


def test_sync_turns_survive_reopening_the_database(url: str) -> None:
    with open_memory(url) as first:
        bot, _ = bot_on(first, "t", persona="tutor")
        assert bot.say("I like Python") == "You said: I like Python"
        assert "".join(bot.stream("Idea?")) == "You said: Idea?"
    with open_memory(url) as second:  # as a new process would
        bot, model = bot_on(second, "t")
        assert bot.persona == "tutor"
        bot.say("How long?")
        sent = [m.text for m in model.calls[-1] if m.type == "human"]
        assert sent == ["I like Python", "Idea?", "How long?"]


async def test_async_turns_survive_reopening_the_database(url: str) -> None:
    with open_memory(url) as first:
        bot, _ = bot_on(first, "a")
        assert await bot.asay("one") == "You said: one"
        assert "".join([p async for p in bot.astream("two")]) == "You said: two"
    with open_memory(url) as second:
        bot, _ = bot_on(second, "a")
        assert texts(await bot.atranscript())[::2] == ["one", "two"]
        assert texts(bot.transcript()) == texts(await bot.atranscript())
        bot.say("three")  # the sync API on the same memory, after async turns
        assert get_thread(second, "a").messages == 6


async def test_native_async_savers_serve_the_async_api(url: str) -> None:
    async with await aopen_memory(url) as memory:
        bot = Chatbot(
            thread_id="n",
            chat_model=FakeChat(),
            checkpointer=memory.checkpointer,
            store=memory.store,
            max_turns=2,
            low_water=0.5,
        )
        for text in ("one", "two", "three", "four"):
            assert await bot.asay(text) == f"You said: {text}"
        stream = bot.astream("five")
        await anext(stream)
        await stream.aclose()
        saved = await bot.atranscript()
        assert texts(saved)[::2] == ["one", "two", "three", "four", "five"]
        assert len({m.id for m in saved}) == 10
    with open_memory(url) as reopened:  # the threaded savers read what the native ones wrote
        assert texts(bot_on(reopened, "n")[0].transcript()) == texts(saved)


# --- bounded storage ---------------------------------------------------------------------------


def test_old_checkpoints_are_pruned_and_the_transcript_keeps_everything(url: str) -> None:
    with open_memory(url, keep_checkpoints=3, prune_every=1) as memory:
        bot, model = bot_on(memory, "long", max_turns=4)
        for number in range(25):
            bot.say(f"message {number}")
        bot.wait()  # the summary is folded after the reply, in the background
        assert count_rows(memory, "checkpoints", "long") == 3
        values = bot.graph.get_state(bot.config).values
        assert values["archived"] > 0 and len(values["messages"]) <= 8
        assert texts(bot.transcript())[::2] == [f"message {n}" for n in range(25)]
        assert len(chat_calls(model.calls)[-1]) <= 1 + 8  # the model still gets the window only
        assert get_thread(memory, "long").messages == 50
        if memory.kind == "postgres":  # blobs no kept checkpoint uses are gone too
            assert count_rows(memory, "checkpoint_blobs", "long") <= 3 * 4


# --- threads ------------------------------------------------------------------------------------


def test_thread_admin_on_a_real_database(url: str) -> None:
    with open_memory(url) as memory:
        first, _ = bot_on(memory, "first", persona="travel_planner")
        first.say("Plan a week in Japan")
        second, _ = bot_on(memory, "second", max_turns=2, low_water=0.5)
        for text in ("Explain recursion", "More", "Even more", "Last"):
            second.say(text)
    with open_memory(url) as memory:
        listed = list_threads(memory)
        assert [(t.id, t.title, t.persona, t.messages) for t in listed] == [
            ("second", "Explain recursion", "assistant", 8),
            ("first", "Plan a week in Japan", "travel_planner", 2),
        ]
        exported = json.loads(export_thread(memory, "second"))
        assert [m["content"] for m in exported["messages"]][::2] == [
            "Explain recursion",
            "More",
            "Even more",
            "Last",
        ]
        markdown = export_thread(memory, "first", "markdown")
        assert markdown.startswith("# Plan a week in Japan") and "travel_planner" in markdown
        assert delete_thread(memory, "second")
        assert count_rows(memory, "checkpoints", "second") == 0
        assert memory.archive.read("second") == []
        assert [t.id for t in list_threads(memory)] == ["first"]
        assert bot_on(memory, "second")[0].transcript() == []


# --- any thread id the API accepts works for the thread's whole life -------------------------

THREAD_IDS = [
    "session.42",
    "ada@example.com",
    "a/b:c",
    "with space",
    "ünï cødé 会话",
    "%2E",  # must not meet "." (percent-encoding is injective)
    ".",
    "x" * 128,
    "😀" * 128,  # 4 UTF-8 bytes each: the longest label an accepted id can make
]


@pytest.mark.parametrize("thread_id", THREAD_IDS)
def test_any_accepted_thread_id_lives_through_evictions(any_url: str, thread_id: str) -> None:
    with open_memory(any_url) as memory:
        bot, model = bot_on(memory, thread_id, max_turns=1)
        for text in ("one", "two", "three"):
            assert bot.say(text) == f"You said: {text}"
        assert texts(bot.transcript())[::2] == ["one", "two", "three"]
        assert [t.id for t in list_threads(memory)] == [thread_id]
        assert json.loads(export_thread(memory, thread_id))["thread"]["id"] == thread_id
        assert delete_thread(memory, thread_id)
        assert memory.archive.read(thread_id) == []
        assert bot_on(memory, thread_id)[0].transcript() == []


def test_transcripts_under_the_old_raw_namespace_are_still_found(any_url: str) -> None:
    """Before `label()`, an id like 'ada@example.com' was its own namespace label."""
    thread_id = "ada@example"  # no dot: the old layout accepted it as a label
    with open_memory(any_url) as memory:
        bot, _ = bot_on(memory, thread_id, max_turns=1)
        for text in ("one", "two", "three"):
            bot.say(text)
        old, new = ("transcript", thread_id), ("transcript", "ada%40example")
        entries = memory.store.search(new, limit=100)
        assert len(entries) == 4
        for item in entries:  # move them where the old version wrote them
            memory.store.put(old, item.key, item.value)
            memory.store.delete(new, item.key)
        assert texts(bot.transcript())[::2] == ["one", "two", "three"]
        bot.say("four")  # archives at the next positions, under the new label
        assert texts(bot.transcript())[::2] == ["one", "two", "three", "four"]
        assert delete_thread(memory, thread_id)
        assert memory.store.search(old) == [] and memory.store.search(new) == []


def test_plain_ids_keep_their_old_namespace() -> None:
    import uuid

    from agent.memory.archive import namespace

    for plain in ("abc-123", str(uuid.uuid4()), "user_7~x"):
        assert namespace(plain) == ("transcript", plain)


@pytest.mark.parametrize(
    ("thread_id", "problem"),
    [
        ("", "empty"),
        ("   ", "blank"),
        (42, "not a string"),
        ("a\x00b", "control character"),
        ("line\nbreak", "control character"),
        ("\ud800", "lone surrogate"),
        ("x" * 129, "longer than 128"),
    ],
)
def test_ids_the_memory_cannot_keep_are_refused_at_construction(
    thread_id: object, problem: str
) -> None:
    from agent.memory import InvalidThreadIdError

    with open_memory("memory") as memory:
        with pytest.raises(InvalidThreadIdError, match=problem):
            Chatbot(thread_id=thread_id, chat_model=FakeChat(), memory=memory)  # type: ignore[arg-type]
        with pytest.raises(InvalidThreadIdError, match=problem):
            get_thread(memory, thread_id)  # type: ignore[arg-type]
        assert list_threads(memory) == []


# --- where the database is, and setting it up ----------------------------------------------------


def test_default_chatbot_keeps_its_sqlite_file_in_agent_home(tmp_path: Path) -> None:
    with Chatbot(thread_id="home", chat_model=FakeChat()) as bot:
        bot.say("remember me")
    assert (tmp_path / "agent-home" / "agent.db").is_file()
    with Chatbot(thread_id="home", chat_model=FakeChat()) as again:
        assert texts(again.transcript()) == ["remember me", "You said: remember me"]


def test_agent_db_url_chooses_the_database(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_DB_URL", url)
    with Chatbot(thread_id="env", chat_model=FakeChat()) as bot:
        bot.say("hi")
        assert bot.memory.kind in ("sqlite", "postgres") and bot.memory.location.target == url
    with open_memory(url) as memory:
        assert get_thread(memory, "env").title == "hi"


def test_migrate_is_idempotent(url: str) -> None:
    assert migrate(url) == migrate(url)
    with open_memory(url) as memory:
        assert list_threads(memory) == []


def test_an_unreachable_postgres_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    with pytest.raises(DatabaseUnavailableError, match="Cannot open the database.*127.0.0.1:1"):
        open_memory(url)
    monkeypatch.setenv("AGENT_DB_URL", url)
    with pytest.raises(DatabaseUnavailableError, match="Check AGENT_DB_URL, or unset it"):
        open_memory()


def test_an_unwritable_sqlite_path_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DatabaseUnavailableError, match="Cannot open the database"):
        open_memory(str(blocker / "agent.db"))


def test_async_api_works_from_several_event_loops(url: str) -> None:
    with open_memory(url) as memory:
        bot, _ = bot_on(memory, "loops")
        for text in ("one", "two"):
            assert asyncio.run(bot.asay(text)) == f"You said: {text}"
        assert get_thread(memory, "loops").messages == 4
