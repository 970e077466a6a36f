"""Any text a user can type is stored and read back exactly, or refused up front, on every backend.

The rules (docs/memory.md, "What text is kept"): NUL and every other control character are
stored exactly (PostgreSQL's JSONB cannot hold NUL, so such store values travel in an ASCII
envelope); lone surrogates are not text and are refused before anything is stored. A failing
write fails its turn cleanly and never poisons the thread: once the cause is gone, it goes on.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage

from agent import Chatbot
from agent.errors import InvalidTextError
from agent.graph import build_graph
from agent.memory import (
    DatabaseError,
    Memory,
    export_thread,
    get_thread,
    list_threads,
    open_memory,
)
from agent.memory.threads import title_from
from tests.fakes import FakeChat
from tests.integration.test_memory_support import failing_writes

pytestmark = pytest.mark.integration

TYPEABLE = [
    "hello\x00world",  # `printf 'hello\0world' | agent ask -`
    "\x00",
    "bell\x07 escape\x1b[31m red del\x7f",
    "tab\tnewline\ncarriage\r",
    "c1 \x85 \x9b controls",
    "line\u2028separator\u2029 bom\ufeff zero\u200bwidth",
    "emoji 😀 and 会话",
    'a literal backslash-u0000: \\u0000 and a quote " ',
]


def reopen(memory: Memory, url: str) -> Memory:
    """The same database through a fresh memory (as a new process would), unless in-process."""
    if url == "memory":
        return memory
    memory.close()
    return open_memory(url)


def test_typeable_text_is_stored_and_read_back_exactly(any_url: str) -> None:
    memory = open_memory(any_url)
    bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory, max_turns=1)
    for text in TYPEABLE:  # each turn evicts the one before into the transcript archive
        assert bot.say(text) == f"You said: {text}"
    memory = reopen(memory, any_url)
    try:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory, max_turns=1)
        assert [str(m.text) for m in bot.transcript()][::2] == TYPEABLE
        assert [m["content"] for m in json.loads(export_thread(memory, "t"))["messages"]] == [
            text for typed in TYPEABLE for text in (typed, f"You said: {typed}")
        ]
        (info,) = list_threads(memory)
        assert (info.id, info.title, info.messages) == ("t", title_from(TYPEABLE[0]), 16)
        assert get_thread(memory, "t").title == "hello\x00world"
    finally:
        memory.close()


async def test_typeable_text_through_the_async_api(any_url: str) -> None:
    with open_memory(any_url) as memory:
        bot = Chatbot(thread_id="a", chat_model=FakeChat(), memory=memory, max_turns=1)
        for text in TYPEABLE[:3]:
            assert await bot.asay(text) == f"You said: {text}"
        assert [str(m.text) for m in await bot.atranscript()][::2] == TYPEABLE[:3]


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "ok then \udc80"])
async def test_a_lone_surrogate_is_refused_up_front_and_changes_nothing(
    any_url: str, text: str
) -> None:
    with open_memory(any_url) as memory:
        bot = Chatbot(thread_id="s", chat_model=FakeChat(), memory=memory)
        bot.say("before")
        with pytest.raises(InvalidTextError, match="lone surrogate.*UTF-8"):
            bot.say(text)
        with pytest.raises(InvalidTextError):
            await bot.asay(text)
        graph = build_graph(
            chat_model=FakeChat(), checkpointer=memory.checkpointer, store=memory.store
        )
        assert [str(m.text) for m in bot.transcript()] == ["before", "You said: before"]
        assert get_thread(memory, "s").messages == 2
        with pytest.raises(InvalidTextError):  # server clients reach the graph directly
            graph.invoke({"messages": [HumanMessage(text)]}, bot.config)
        bot.say("after")  # LangGraph saved the run's input; the next turn drops it
        assert [str(m.text) for m in bot.transcript()][::2] == ["before", "after"]


# --- a failing write never poisons a thread -----------------------------------------------------


def test_a_failing_record_write_never_poisons_the_thread(url: str) -> None:
    with open_memory(url) as memory:
        bot = Chatbot(thread_id="r", chat_model=FakeChat(), memory=memory, max_turns=1)
        bot.say("one")
        with failing_writes(memory, "store", "prefix", "threads"):
            assert bot.say("two") == "You said: two"  # the turn is saved; its record is not
            assert bot.say("three") == "You said: three"
        bot.say("four")  # the record heals from the saved state
        assert get_thread(memory, "r").messages == 8
        assert [str(m.text) for m in bot.transcript()][::2] == ["one", "two", "three", "four"]


def test_a_failing_archive_write_fails_the_turn_cleanly_and_never_poisons(url: str) -> None:
    with open_memory(url) as memory:
        bot = Chatbot(thread_id="w", chat_model=FakeChat(), memory=memory, max_turns=1)
        bot.say("one")
        with failing_writes(memory, "store", "prefix", "transcript"):
            with pytest.raises(DatabaseError, match="injected"):
                bot.say("two")  # evicting "one" must write the archive
            assert [str(m.text) for m in bot.transcript()] == ["one", "You said: one"]
        assert bot.say("two again") == "You said: two again"
        assert bot.say("three") == "You said: three"
        assert [str(m.text) for m in bot.transcript()][::2] == ["one", "two again", "three"]
