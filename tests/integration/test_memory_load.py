"""Many conversations at once on ONE shared memory (how a web service uses it), every backend.

Concurrency must be bounded by time, never by a pool size: 200 conversations each take two
turns (the second evicts the first, so the transcript archive is written too) from 200 OS
threads or 200 tasks, and every one completes with its own history. Lock timeouts are long:
a slow machine makes these tests slow, not failing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent import Chatbot
from agent.memory import Memory, list_threads, open_memory
from tests.fakes import FakeChat, chat_calls

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONVERSATIONS = 200
PATIENT = 600.0  # seconds a turn may wait for its thread: time bounds the test, not errors


def bot(memory: Memory, n: int) -> Chatbot:
    return Chatbot(thread_id=f"c{n}", chat_model=FakeChat(), memory=memory, max_turns=1)


def assert_every_conversation_whole(memory: Memory) -> None:
    """Each thread holds exactly its own two exchanges, in order, and is listed."""
    for n in range(CONVERSATIONS):
        saved = [str(m.text) for m in bot(memory, n).transcript()]
        assert saved == [
            f"{n} one",
            f"You said: {n} one",
            f"{n} two",
            f"You said: {n} two",
        ]
    assert sorted(info.id for info in list_threads(memory)) == sorted(
        f"c{n}" for n in range(CONVERSATIONS)
    )


def test_200_concurrent_conversations_from_os_threads_on_one_memory(url: str) -> None:
    errors: list[BaseException] = []

    def converse(n: int) -> None:
        try:
            chat = bot(memory, n)
            chat.say(f"{n} one")
            chat.say(f"{n} two")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    with open_memory(url, lock_timeout=PATIENT) as memory:
        workers = [threading.Thread(target=converse, args=(n,)) for n in range(CONVERSATIONS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        assert_every_conversation_whole(memory)


async def test_200_concurrent_conversations_from_tasks_on_one_memory(url: str) -> None:
    async def converse(n: int) -> None:
        chat = bot(memory, n)
        await chat.asay(f"{n} one")
        await chat.asay(f"{n} two")

    with open_memory(url, lock_timeout=PATIENT) as memory:
        outcomes = await asyncio.gather(
            *(converse(n) for n in range(CONVERSATIONS)), return_exceptions=True
        )
        assert [o for o in outcomes if o is not None] == []
        assert_every_conversation_whole(memory)


def test_many_turns_queued_on_one_thread_all_run_in_turn(any_url: str) -> None:
    """50 OS threads and 50 tasks send to ONE thread at once: each turn sees the ones before."""
    model = FakeChat()
    with open_memory(any_url, lock_timeout=PATIENT) as memory:

        def send(n: int) -> None:
            Chatbot(thread_id="busy", chat_model=model, memory=memory, max_turns=100).say(
                f"thread {n}"
            )

        async def tasks() -> None:
            chats = [
                Chatbot(thread_id="busy", chat_model=model, memory=memory, max_turns=100)
                for _ in range(50)
            ]
            await asyncio.gather(*(c.asay(f"task {n}") for n, c in enumerate(chats)))

        workers = [threading.Thread(target=send, args=(n,)) for n in range(50)]
        for worker in workers:
            worker.start()
        asyncio.run(tasks())
        for worker in workers:
            worker.join()
        saved = Chatbot(thread_id="busy", chat_model=model, memory=memory).transcript()
    assert len(saved) == 200
    humans_seen = sorted(sum(m.type == "human" for m in call) for call in chat_calls(model.calls))
    assert humans_seen == list(range(1, 101))  # no lost update: turn k saw the k-1 before it


async def test_200_concurrent_conversations_on_the_native_async_savers(url: str) -> None:
    from agent.memory.aio import aopen_memory

    async with await aopen_memory(url) as memory:

        async def converse(n: int) -> None:
            chat = Chatbot(
                thread_id=f"c{n}",
                chat_model=FakeChat(),
                checkpointer=memory.checkpointer,
                store=memory.store,
                max_turns=1,
            )
            await chat.asay(f"{n} one")
            await chat.asay(f"{n} two")
            assert [str(m.text) for m in await chat.atranscript()][::2] == [f"{n} one", f"{n} two"]

        outcomes = await asyncio.gather(
            *(converse(n) for n in range(CONVERSATIONS)), return_exceptions=True
        )
        assert [o for o in outcomes if o is not None] == []
