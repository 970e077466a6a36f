"""Database and lock failures reach the Python API as typed errors naming the part that failed.

Never a raw driver error, never a model error: a read-only database, a file that is not a
database, an unwritable lock directory, an unreachable server. When the reply was streamed
before the save failed, `ReplyNotSavedError` says so and carries the reply; the thread stays as
it was. Advice names AGENT_DB_URL only when the location came from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent import Chatbot
from agent.errors import ModelError
from agent.memory import (
    DatabaseError,
    DatabaseFileError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    DatabaseWriteError,
    LockUnavailableError,
    ReplyNotSavedError,
    get_thread,
    list_threads,
    open_memory,
)
from agent.memory.savers import sqlite_lock_dir
from tests.fakes import FakeChat
from tests.integration.test_memory_support import failing_writes, unwritable

pytestmark = pytest.mark.integration


@contextmanager
def read_only(url: str) -> Iterator[None]:
    """Make the database refuse writes: an unwritable file, or a read-only PostgreSQL database."""
    if not url.startswith("postgresql://"):
        with unwritable(Path(url)):
            yield
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')


def first_turn(url: str) -> None:
    with open_memory(url) as memory:
        Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory).say("first")


def test_a_read_only_database_is_a_database_error_naming_it(url: str) -> None:
    first_turn(url)
    with read_only(url), open_memory(url) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
        with pytest.raises(DatabaseError) as raised:
            bot.say("second")
        error = raised.value
        cause = error.cause if isinstance(error, ReplyNotSavedError) else error
        assert isinstance(cause, DatabaseReadOnlyError) and not isinstance(error, ModelError)
        assert "read-only" in str(error) and memory.describe() in str(error)
    with open_memory(url) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
        assert [str(m.text) for m in bot.transcript()] == ["first", "You said: first"]


def test_a_sqlite_file_made_read_only_still_reads_and_keeps_the_streamed_reply(
    tmp_path: Path,
) -> None:
    url = str(tmp_path / "agent.db")
    first_turn(url)
    with read_only(url), open_memory(url) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
        with pytest.raises(ReplyNotSavedError) as raised:
            bot.say("second")
        assert raised.value.reply == "You said: second"
        assert isinstance(raised.value.cause, DatabaseReadOnlyError)
        assert [t.messages for t in list_threads(memory)] == [2]  # reading still works


def test_a_save_that_fails_after_the_reply_says_the_reply_was_shown(url: str) -> None:
    first_turn(url)
    with open_memory(url) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
        with failing_writes(memory, "checkpoints", "thread_id", "t"):
            with pytest.raises(ReplyNotSavedError, match="injected") as raised:
                bot.say("second")
            assert raised.value.reply == "You said: second"
            assert str(raised.value).startswith("The reply was shown but could not be saved.")
            assert str(raised.value).endswith("send it again once this is fixed.")
            assert [str(m.text) for m in bot.transcript()] == ["first", "You said: first"]
        assert bot.say("second again") == "You said: second again"
        assert get_thread(memory, "t").messages == 4


async def test_a_save_that_fails_after_the_reply_through_the_async_api(url: str) -> None:
    first_turn(url)
    with open_memory(url) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
        with failing_writes(memory, "checkpoints", "thread_id", "t"):
            with pytest.raises(ReplyNotSavedError, match="injected") as raised:
                await bot.asay("second")
            assert raised.value.reply == "You said: second"
        assert await bot.asay("again") == "You said: again"


def test_a_failure_before_the_reply_is_a_database_error_not_a_reply_error(url: str) -> None:
    first_turn(url)
    with open_memory(url) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory, max_turns=1)
        with failing_writes(memory, "store", "prefix", "transcript"):
            with pytest.raises(DatabaseWriteError, match="injected") as raised:
                bot.say("second")  # evicting "first" writes the archive before the model runs
        assert not isinstance(raised.value, ReplyNotSavedError)
        assert memory.describe() in str(raised.value)


def test_an_empty_database_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    path.touch()
    with pytest.raises(DatabaseFileError, match=r"empty \(0 bytes\).*Restore the file"):
        open_memory(str(path))
    assert path.stat().st_size == 0
    assert not list(tmp_path.glob("agent.db.creating-*"))


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("my shopping list, not a database\n" * 100)
    with pytest.raises(DatabaseFileError, match="not a database"):
        open_memory(str(path))
    assert path.read_text().startswith("my shopping list")


def test_a_new_database_file_is_created_whole(tmp_path: Path) -> None:
    path = tmp_path / "new" / "agent.db"
    with open_memory(str(path)) as memory:
        assert list_threads(memory) == []
    assert path.stat().st_size > 0
    assert not list(path.parent.glob("agent.db.creating-*"))


def test_an_unwritable_lock_directory_is_a_lock_error_and_saves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    first_turn(str(path))
    with open_memory(str(path)) as memory, unwritable(sqlite_lock_dir(path)):
        bot = Chatbot(thread_id="other", chat_model=FakeChat(), memory=memory)
        with pytest.raises(LockUnavailableError, match="agent.db-locks.*writable"):
            bot.say("hello")
        assert [t.id for t in list_threads(memory)] == ["t"]


def test_advice_names_agent_db_url_only_when_it_was_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    url = str(blocker / "agent.db")
    with pytest.raises(DatabaseUnavailableError) as given:
        open_memory(url)
    assert "AGENT_DB_URL" not in str(given.value)
    assert "location given" in str(given.value)
    monkeypatch.setenv("AGENT_DB_URL", url)
    with pytest.raises(DatabaseUnavailableError, match="Check AGENT_DB_URL, or unset it"):
        open_memory()
    monkeypatch.delenv("AGENT_DB_URL")
    monkeypatch.setenv("AGENT_HOME", str(blocker / "home"))  # the default file cannot be made
    with pytest.raises(DatabaseUnavailableError) as default:
        open_memory()
    assert "unset" not in str(default.value) and "set AGENT_DB_URL" in str(default.value)
