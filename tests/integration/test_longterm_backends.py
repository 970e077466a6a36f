"""Long-term memory and the summary on real SQLite files and a real PostgreSQL server (issue 14)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage, SystemMessage

from agent import Chatbot
from agent.memory import Memory, open_memory
from agent.memory.longterm import UserMemory, namespace
from tests.fakes import FakeChat, chat_calls, role_of, with_memory_jobs

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def rows(memory: Memory, table: str, prefix: str) -> int:
    """Rows under a namespace prefix in one of the store's tables, read with plain SQL."""
    if memory.kind == "sqlite":
        with sqlite3.connect(memory.location.target) as conn:
            query = f"SELECT count(*) FROM {table} WHERE prefix LIKE ?"
            return int(conn.execute(query, (prefix + "%",)).fetchone()[0])
    import psycopg

    with psycopg.connect(memory.location.target) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE prefix LIKE %s", (prefix + "%",))
        return int(row.fetchone()[0])  # type: ignore[index]


def test_facts_are_durable_and_forgetting_deletes_them_from_the_database(url: str) -> None:
    prefix = ".".join(namespace("priya@example.com"))
    with open_memory(url) as memory:
        facts = UserMemory(memory.store, "priya@example.com", None)
        facts.put("name", "Priya")
        facts.put("diet", "vegetarian")
        facts.put("home city", "Paris")
        facts.put("home city", "Lyon")  # replaces, not added
    with open_memory(url) as memory:
        facts = UserMemory(memory.store, "priya@example.com", None)
        assert sorted(f.line for f in facts.facts()) == [
            "diet: vegetarian",
            "home city: Lyon",
            "name: Priya",
        ]
        assert rows(memory, "store", prefix) == 3
        assert facts.forget("diet")
        assert rows(memory, "store", prefix) == 2
        assert facts.clear() == 2
        assert rows(memory, "store", prefix) == 0


def test_a_users_facts_reach_their_new_thread_after_a_restart(url: str) -> None:
    model = FakeChat(reply=with_memory_jobs())
    with open_memory(url) as memory:
        first = Chatbot(
            chat_model=model, memory=memory, user_id="priya", max_turns=2, embeddings=None
        )
        for text in ("Hi, my name is Priya.", "I work as a nurse.", "Nice weather."):
            first.say(text)
        first.wait()
        assert "Priya" in first.summary()
    with open_memory(url) as memory:  # a new process, a new thread
        later = Chatbot(chat_model=model, memory=memory, user_id="priya", embeddings=None)
        later.say("What is my name?")
        later.wait()
        system = chat_calls(model.calls)[-1][0]
        assert isinstance(system, SystemMessage)
        assert "- name: Priya" in system.text and "- job: nurse" in system.text
        other = Chatbot(chat_model=model, memory=memory, user_id="sam", embeddings=None)
        other.say("What is my name?")
        assert "Priya" not in chat_calls(model.calls)[-1][0].text


def test_facts_are_ranked_by_meaning_with_the_bundled_model(url: str) -> None:
    with open_memory(url) as memory:
        facts = UserMemory(memory.store, "priya")  # the rag extra is installed for the tests
        assert facts.embeddings is not None
        facts.put("name", "Priya")
        facts.put("diet", "vegetarian, no fish either")
        facts.put("home city", "Lyon")
        facts.put("programming language", "prefers Python")
        assert facts.search("What should I cook for dinner?", 1)[0].topic == "diet"
        assert facts.search("Which town do I live in?", 1)[0].topic == "home city"


SCRIPT = """
import sys
from agent import Chatbot
from tests.fakes import FakeChat, with_memory_jobs

bot = Chatbot(chat_model=FakeChat(reply=with_memory_jobs()), thread_id="t", user_id="priya",
              max_turns=2, embeddings=None)
for text in sys.argv[1:]:
    bot.say(text)
"""  # ends right after the last reply: no wait(), no close()


def test_a_script_that_exits_right_after_a_reply_still_finishes_the_after_reply_work(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "AGENT_DB_URL": str(tmp_path / "memory.db")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    words = ["My name is Priya.", "I work as a nurse.", "Nice day."]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *words], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and "failed" not in done.stderr, done.stderr
    with open_memory(str(tmp_path / "memory.db")) as memory:
        bot = Chatbot(chat_model=FakeChat(), memory=memory, thread_id="t", embeddings=None)
        assert "Priya" in bot.summary()  # folded after the second reply, before exiting
        facts = UserMemory(memory.store, "priya", None).facts()
        assert sorted(f.line for f in facts) == ["job: nurse", "name: Priya"]


def test_closing_a_shared_memory_lets_the_after_reply_work_finish_first(tmp_path: Path) -> None:
    # A Chatbot on a memory it was handed leaves its after-reply work running; the owner then
    # closes the memory. Closing SQLite under that work once crashed the interpreter (CI).
    closing = threading.Event()
    jobs = with_memory_jobs()

    def reply(messages: Sequence[BaseMessage]) -> str:
        if role_of(messages) == "extract":  # the work goes on only once close() has begun
            closing.wait(timeout=2)
        return jobs(messages)

    path = str(tmp_path / "memory.db")
    memory = open_memory(path)
    memory.closers.append(closing.set)  # closers run last-in first: this one runs first
    bot = Chatbot(chat_model=FakeChat(reply=reply), memory=memory, user_id="priya", embeddings=None)
    bot.say("My name is Priya.")
    memory.close()  # no bot.wait(), no bot.close()
    with open_memory(path) as again:
        assert [f.line for f in UserMemory(again.store, "priya", None).facts()] == ["name: Priya"]
