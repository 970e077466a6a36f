"""Every Chatbot behaviour, run through the sync API and the async one (simonw/llm's idea).

Each test takes a `driver`: `SyncDriver` calls say/stream, `AsyncDriver` calls asay/astream
(inside asyncio.run). A rule that holds on one path and not the other fails here.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot
from agent.chatbot import CONTINUE_PROMPT
from agent.errors import EmptyMessageError, MessageTooLargeError, NothingToContinueError
from agent.memory import list_threads
from agent.memory.errors import DatabaseWriteError, ReplyNotSavedError, ThreadBusyError
from tests.fakes import PAUSE_LIMIT, FakeChat, role_of, with_memory_jobs

LONG = "word " * 200  # ~250 chunks of 4 characters


class Driver(Protocol):
    """One way of talking to a Chatbot."""

    def say(self, bot: Chatbot, text: str) -> str: ...

    def pieces(
        self, bot: Chatbot, text: str, *, until: int | None = None, then: str = "stop"
    ) -> list[str]: ...

    def concurrently(self, bots: list[Chatbot], text: Callable[[int], str]) -> list[str]: ...

    def continuation(self, bot: Chatbot) -> str: ...

    def transcript(self, bot: Chatbot) -> list[BaseMessage]: ...


class SyncDriver:
    """say / stream / OS threads."""

    def say(self, bot: Chatbot, text: str) -> str:
        return bot.say(text)

    def pieces(
        self, bot: Chatbot, text: str, *, until: int | None = None, then: str = "stop"
    ) -> list[str]:
        received: list[str] = []
        stream = bot.stream(text)
        for piece in stream:
            received.append(piece)
            if len(received) == until:
                if then == "close":
                    resume_when_stopped(bot)
                    stream.close()
                    break
                bot.stop()
                resume(bot)
        return received

    def concurrently(self, bots: list[Chatbot], text: Callable[[int], str]) -> list[str]:
        replies: list[str] = [""] * len(bots)

        def talk(n: int) -> None:
            replies[n] = bots[n].say(text(n))

        workers = [threading.Thread(target=talk, args=(n,)) for n in range(len(bots))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return replies

    def continuation(self, bot: Chatbot) -> str:
        return bot.continue_reply()

    def transcript(self, bot: Chatbot) -> list[BaseMessage]:
        return bot.transcript()


class AsyncDriver:
    """asay / astream / tasks on one event loop."""

    def say(self, bot: Chatbot, text: str) -> str:
        return asyncio.run(bot.asay(text))

    def pieces(
        self, bot: Chatbot, text: str, *, until: int | None = None, then: str = "stop"
    ) -> list[str]:
        async def run() -> list[str]:
            received: list[str] = []
            stream = bot.astream(text)
            async for piece in stream:
                received.append(piece)
                if len(received) == until:
                    if then == "close":
                        resume_when_stopped(bot)
                        await stream.aclose()
                        break
                    bot.stop()
                    resume(bot)
            return received

        return asyncio.run(run())

    def concurrently(self, bots: list[Chatbot], text: Callable[[int], str]) -> list[str]:
        async def run() -> list[str]:
            return list(await asyncio.gather(*(bot.asay(text(n)) for n, bot in enumerate(bots))))

        return asyncio.run(run())

    def continuation(self, bot: Chatbot) -> str:
        async def run() -> str:
            return "".join([piece async for piece in bot.astream_continue()])

        return asyncio.run(run())

    def transcript(self, bot: Chatbot) -> list[BaseMessage]:
        return asyncio.run(bot.atranscript())


def resume(bot: Chatbot) -> None:
    """Let the bot's paused fake model go on (after the test pressed stop)."""
    model = bot_model(bot)
    if model is not None:
        model.resume()


def resume_when_stopped(bot: Chatbot) -> None:
    """Resume the paused model once the bot presses its stop switch (as a real model would
    produce its next token some time after the user left)."""
    switch = bot._switch

    def watch() -> None:
        if switch.pressed.wait(PAUSE_LIMIT):
            resume(bot)

    threading.Thread(target=watch, daemon=True).start()


_MODELS: dict[int, FakeChat] = {}


def bot_model(bot: Chatbot) -> FakeChat | None:
    return _MODELS.get(id(bot))


@pytest.fixture(params=[SyncDriver(), AsyncDriver()], ids=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_bot() -> Iterator[Callable[..., tuple[Chatbot, FakeChat]]]:
    saver = InMemorySaver()

    def make(model: FakeChat | None = None, **settings: Any) -> tuple[Chatbot, FakeChat]:
        model = model or FakeChat()
        bot = Chatbot(chat_model=model, checkpointer=saver, **settings)
        _MODELS[id(bot)] = model
        return bot, model

    yield make
    _MODELS.clear()


def test_a_reply_is_returned_and_saved(driver: Driver, make_bot: Any) -> None:
    bot, model = make_bot()
    assert driver.say(bot, "hello") == "You said: hello"
    assert driver.say(bot, "again") == "You said: again"
    assert [m.type for m in model.calls[-1]] == ["system", "human", "ai", "human"]
    assert bot.history()[-1].text == "You said: again"


def test_streamed_pieces_make_the_saved_reply(driver: Driver, make_bot: Any) -> None:
    bot, _ = make_bot(FakeChat(chunk_size=3))
    pieces = driver.pieces(bot, "stream this please")
    assert len(pieces) > 3 and bot.history()[-1].text == "".join(pieces)


def test_stop_ends_the_reply_at_the_next_token_and_saves_it_interrupted(
    driver: Driver, make_bot: Any
) -> None:
    bot, model = make_bot(FakeChat(chunk_size=2, reply=lambda _: LONG, pause_after=3))
    received = driver.pieces(bot, "talk a lot", until=3)
    assert 3 <= len(received) <= 4
    assert model.produced <= 4  # the model stopped at its next token, not after ~500
    saved = bot.history()[-1]
    assert isinstance(saved, AIMessage) and saved.response_metadata.get("interrupted") is True
    assert saved.text == "".join(received)
    assert bot.last_turn is not None and bot.last_turn.interrupted
    driver.say(bot, "next")
    assert [m.type for m in model.calls[-1]] == ["system", "human", "ai", "human"]


def test_closing_the_stream_early_saves_what_was_received(driver: Driver, make_bot: Any) -> None:
    bot, model = make_bot(FakeChat(chunk_size=2, reply=lambda _: LONG, pause_after=2))
    received = driver.pieces(bot, "tell me a long story", until=2, then="close")
    saved = bot.history()[-1]
    assert saved.response_metadata.get("interrupted") is True
    assert str(saved.text).startswith("".join(received)) and len(str(saved.text)) < len(LONG)
    assert model.produced <= 3


def test_a_model_failure_rolls_the_turn_back(driver: Driver, make_bot: Any) -> None:
    bot, _ = make_bot()
    driver.say(bot, "first")
    before = bot.history()
    failing, _ = make_bot(FakeChat(fail_after_chunks=2))
    failing.thread_id = bot.thread_id
    with pytest.raises(ConnectionError):
        driver.say(failing, "this one fails mid-stream")
    assert bot.history() == before
    assert failing.last_turn is None


class SaveFails(InMemorySaver):
    """Checkpoint writes fail while `failing` is set, as a full disk would make them."""

    failing = False

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().put(*args, **kwargs)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        self._check()
        super().put_writes(*args, **kwargs)

    def _check(self) -> None:
        if self.failing:
            raise DatabaseWriteError("test memory", "injected: disk full")


def test_a_save_that_fails_after_the_reply_says_the_reply_was_shown(driver: Driver) -> None:
    saver = SaveFails()

    def reply(messages: Any) -> str:
        saver.failing = True  # the disk fills up while the model answers
        return f"You said: {messages[-1].text}"

    bot = Chatbot(chat_model=FakeChat(reply=reply), checkpointer=saver)
    with pytest.raises(ReplyNotSavedError, match="injected") as raised:
        driver.say(bot, "hello")
    assert raised.value.reply == "You said: hello"
    assert isinstance(raised.value.cause, DatabaseWriteError)


def test_bad_input_changes_nothing(driver: Driver, make_bot: Any) -> None:
    bot, model = make_bot(max_tokens=60)
    driver.say(bot, "hi")
    before = bot.history()
    with pytest.raises(EmptyMessageError):
        driver.say(bot, "   ")
    with pytest.raises(MessageTooLargeError):
        driver.say(bot, "x " * 400)
    assert bot.history() == before and len(model.calls) == 1


def test_the_thread_is_listed_after_a_turn(driver: Driver, make_bot: Any) -> None:
    bot, _ = make_bot()
    driver.say(bot, "Plan a trip to Lisbon")
    driver.say(bot, "In May")
    [info] = list_threads(bot.memory)
    assert (info.id, info.title, info.messages) == (bot.thread_id, "Plan a trip to Lisbon", 4)


def test_evictions_are_reported_and_kept_in_the_transcript(driver: Driver, make_bot: Any) -> None:
    bot, _ = make_bot(max_turns=2, low_water=0.5)
    reports = []
    for n in range(4):
        driver.say(bot, f"message {n}")
        reports.append(bot.last_turn)
    # Turn 2's reply is out, then `compact` evicts exchange 1 so turn 3 starts without
    # evicting; turn 3's report says the model's window lost it. Same for turn 4.
    assert [r.evicted for r in reports if r is not None] == [0, 0, 1, 1]
    assert reports[-1] is not None and reports[-1].archived == 4
    assert [m.text for m in driver.transcript(bot) if m.type == "human"] == [
        f"message {n}" for n in range(4)
    ]


def test_concurrent_conversations_never_cross_talk(driver: Driver, make_bot: Any) -> None:
    bots = [make_bot()[0] for _ in range(12)]
    replies = driver.concurrently(bots, lambda n: f"I am {n}")
    assert replies == [f"You said: I am {n}" for n in range(12)]
    for n, bot in enumerate(bots):
        assert [m.text for m in bot.history() if m.type == "human"] == [f"I am {n}"]


def test_a_stopped_reply_can_be_continued_and_a_complete_one_cannot(
    driver: Driver, make_bot: Any
) -> None:
    bot, model = make_bot(FakeChat(chunk_size=2, reply=lambda _: LONG, pause_after=3))
    driver.pieces(bot, "talk a lot", until=3)
    model.pause_after = None
    continued = driver.continuation(bot)
    assert continued == LONG
    assert model.calls[-1][-1].text == CONTINUE_PROMPT
    with pytest.raises(NothingToContinueError, match="Nothing to continue"):
        driver.continuation(bot)


def test_a_busy_thread_is_a_clear_error(driver: Driver, make_bot: Any) -> None:
    bot, _ = make_bot()
    bot.memory.lock_timeout = 0.0
    with bot.memory.thread_lock(bot.thread_id), pytest.raises(ThreadBusyError):
        driver.say(bot, "hello?")
    assert bot.history()[1:] == []


# Each public async method of the Chatbot, and the sync method the drivers pair it with.
TWINS = {
    "asay": "say",
    "astream": "stream",
    "astream_continue": "stream_continue",
    "atranscript": "transcript",
}


def test_every_async_method_of_the_chatbot_is_driven_here() -> None:
    found = {
        name
        for name, member in inspect.getmembers(Chatbot)
        if not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    }
    assert found == set(TWINS)  # a new async method needs its twin and a driver here
    driven = inspect.getsource(AsyncDriver)
    assert all(f"bot.{name}(" in driven and hasattr(Chatbot, TWINS[name]) for name in TWINS)


def test_waiting_for_after_reply_work_holds_no_worker_thread() -> None:
    # With every executor worker taken by a blocking wait, the after-reply work could never
    # finish if it needed one (found under load: a turn holding a shared SQLite lock file
    # needed a worker to release it). Here the summarizer waits for a job only a worker runs.
    gate = threading.Event()

    def reply(messages: Any) -> str:
        if role_of(messages) == "summarize":
            gate.wait(timeout=60)  # until a worker thread opens it
        return with_memory_jobs()(messages)

    bot = Chatbot(chat_model=FakeChat(reply=reply), checkpointer=InMemorySaver(), max_turns=1)

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        await bot.asay("one")
        await bot.asay("two")  # evicts "one": its summary waits for the gate, after the reply
        third = asyncio.create_task(bot.asay("three"))
        await asyncio.sleep(0)  # the third turn now waits for that summary
        await asyncio.wait_for(asyncio.to_thread(gate.set), timeout=30)
        return await third

    assert asyncio.run(main()) == "You said: three"
    assert "one" in bot.summary()
