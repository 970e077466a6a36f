"""Every sync/async twin of the memory layer, each behaviour run through both sides.

The async twins of archive/prune are derived (the sync code in a worker thread); the
lock's twins share every rule but wait differently, so each behaviour runs on both. A test
lists every `a*` method or function of the memory modules, so a new twin cannot skip this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from agent.memory import StoreArchive, open_memory, threads
from agent.memory.errors import LockUnavailableError, ThreadBusyError
from agent.memory.locking import FileLocks, ThreadLocks
from agent.memory.savers import Memory
from tests.integration.test_memory_support import unwritable

# Every async twin of the memory layer and the sync function it must behave like.
TWINS = {
    "StoreArchive.aread": "StoreArchive.read",
    "StoreArchive.adelete": "StoreArchive.delete",
    "Memory.aprune": "Memory.prune",
    "Memory.athread_lock": "Memory.thread_lock",
    "ThreadLocks.ahold": "ThreadLocks.hold",
    "LocalLocks.aacquire": "LocalLocks.acquire",
}


def test_every_async_twin_of_the_memory_layer_is_listed_here() -> None:
    from agent.memory import archive, locking, savers

    found = {f"threads.{name}" for name, _ in inspect.getmembers(threads, inspect.isfunction)}
    for module in (archive, locking, savers):
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                found |= {f"{cls_name}.{name}" for name in vars(cls)}
    twins = {name for name in found if name.rsplit(".", 1)[1].startswith("a")}
    twins = {name for name in twins if name.replace(".a", ".", 1) in found}
    assert twins == set(TWINS)


class Sync:
    """Runs the sync twin (in a worker thread, so the test's event loop can run other waiters)."""

    name = "sync"

    async def call(
        self, sync: Callable[..., Any], _: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        return await asyncio.to_thread(sync, *args)

    @contextlib.asynccontextmanager
    async def hold(self, locks: ThreadLocks, key: str, timeout: float) -> AsyncIterator[None]:
        held = locks.hold(key, timeout)
        await asyncio.to_thread(held.__enter__)
        try:
            yield
        except BaseException as error:
            if not await asyncio.to_thread(held.__exit__, type(error), error, None):
                raise
        else:
            await asyncio.to_thread(held.__exit__, None, None, None)


class Async:
    """Runs the async twin on the test's event loop."""

    name = "async"

    async def call(
        self, _: Callable[..., Any], twin: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        return await twin(*args)

    def hold(
        self, locks: ThreadLocks, key: str, timeout: float
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return locks.ahold(key, timeout)


@pytest.fixture(params=[Sync(), Async()], ids=lambda api: str(api.name))
def api(request: pytest.FixtureRequest) -> Sync | Async:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "files"])
def locks(request: pytest.FixtureRequest, tmp_path: Path) -> ThreadLocks:
    """The in-process locks alone (memory backend), or with SQLite's lock files."""
    if request.param == "memory":
        return ThreadLocks()
    return ThreadLocks(FileLocks(tmp_path / "locks"))


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Let other tasks and threads run until `predicate()` holds (no timing assumption)."""
    while not predicate():
        await asyncio.sleep(0.001)


# --- locks ------------------------------------------------------------------------------------


async def test_a_held_thread_refuses_a_second_holder_and_frees_other_threads(
    api: Sync | Async, locks: ThreadLocks
) -> None:
    async with locks.ahold("t1", timeout=0):
        with pytest.raises(ThreadBusyError, match="Thread t1 is busy"):
            async with api.hold(locks, "t1", timeout=0.05):
                pass
        async with api.hold(locks, "t2", timeout=0):
            pass
    async with api.hold(locks, "t1", timeout=0):
        pass


async def test_waiters_get_the_thread_in_arrival_order(
    api: Sync | Async, locks: ThreadLocks
) -> None:
    order: list[int] = []

    async def waiter(n: int) -> None:
        async with api.hold(locks, "t", timeout=60):
            order.append(n)

    async with locks.ahold("t", timeout=0):
        tasks = []
        for n in range(5):
            tasks.append(asyncio.create_task(waiter(n)))
            await wait_until(lambda queued=n + 1: len(locks.local._queues["t"]) == queued)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_an_error_in_the_block_releases_the_thread(
    api: Sync | Async, locks: ThreadLocks
) -> None:
    with pytest.raises(KeyError, match="inside"):
        async with api.hold(locks, "t", timeout=0):
            raise KeyError("inside")
    async with api.hold(locks, "t", timeout=0):
        pass


async def test_a_waiter_that_gives_up_does_not_block_the_next(
    api: Sync | Async, locks: ThreadLocks
) -> None:
    got: list[str] = []

    async def patient() -> None:
        async with api.hold(locks, "t", timeout=60):
            got.append("patient")

    async with locks.ahold("t", timeout=0):
        with pytest.raises(ThreadBusyError):
            async with api.hold(locks, "t", timeout=0.01):
                pass
        waiting = asyncio.create_task(patient())
        await wait_until(lambda: len(locks.local._queues["t"]) == 1)
    await waiting
    assert got == ["patient"]


async def test_sync_and_async_holders_exclude_each_other(
    api: Sync | Async, locks: ThreadLocks
) -> None:
    other = Async() if isinstance(api, Sync) else Sync()
    async with api.hold(locks, "t", timeout=0):
        with pytest.raises(ThreadBusyError):
            async with other.hold(locks, "t", timeout=0.01):
                pass


async def test_a_cancelled_waiter_passes_the_thread_on() -> None:
    locks, got = ThreadLocks(), []

    async def waiter(name: str) -> None:
        async with locks.ahold("t", timeout=60):
            got.append(name)

    async with locks.ahold("t", timeout=0):
        first = asyncio.create_task(waiter("cancelled"))
        await wait_until(lambda: len(locks.local._queues["t"]) == 1)
        second = asyncio.create_task(waiter("second"))
        await wait_until(lambda: len(locks.local._queues["t"]) == 2)
        first.cancel()
    await second
    assert got == ["second"]
    with contextlib.suppress(asyncio.CancelledError):
        await first


async def test_lock_files_exclude_another_memory_on_the_same_database(
    api: Sync | Async, tmp_path: Path
) -> None:
    one = ThreadLocks(FileLocks(tmp_path / "locks"))
    two = ThreadLocks(FileLocks(tmp_path / "locks"))  # as another process would have
    async with api.hold(one, "t", timeout=0):
        with pytest.raises(ThreadBusyError):
            async with api.hold(two, "t", timeout=0.05):
                pass
    async with api.hold(two, "t", timeout=0):
        pass


async def test_an_unwritable_lock_directory_is_a_lock_error_naming_it(
    api: Sync | Async, tmp_path: Path
) -> None:
    directory = tmp_path / "locks"
    directory.mkdir()
    locks = ThreadLocks(FileLocks(directory))
    with unwritable(directory):
        with pytest.raises(LockUnavailableError, match=f"lock file in {directory}") as raised:
            async with api.hold(locks, "t", timeout=5):
                pass
    assert "writable" in str(raised.value)
    assert not locks.local._queues  # the in-process lock was released too


# --- per-turn bookkeeping, archive, pruning ---------------------------------------------------


def exchange(n: int) -> list[Any]:
    return [HumanMessage(f"q{n}", id=f"q{n}"), AIMessage(f"a{n}", id=f"a{n}")]


async def test_archive_reads_the_first_count_in_order_and_deletes(api: Sync | Async) -> None:
    archive = StoreArchive(open_memory("memory").store)
    archive.append("t", 0, exchange(0) + exchange(1))
    read = await api.call(archive.read, archive.aread, "t", 3)
    assert [m.text for m in read] == ["q0", "a0", "q1"]
    everything = await api.call(archive.read, archive.aread, "t", None)
    assert [m.text for m in everything] == ["q0", "a0", "q1", "a1"]
    await api.call(archive.delete, archive.adelete, "t")
    assert await api.call(archive.read, archive.aread, "t", None) == []


async def test_prune_keeps_the_newest_checkpoints(api: Sync | Async, tmp_path: Path) -> None:
    from agent import Chatbot
    from tests.fakes import FakeChat

    with open_memory(str(tmp_path / "db.sqlite"), keep_checkpoints=2, prune_every=1000) as memory:
        bot = Chatbot(thread_id="t", chat_model=FakeChat(), memory=memory)
        for n in range(4):
            bot.say(f"turn {n}")
        newest = memory.checkpointer.get_tuple(bot.config)
        await api.call(memory.prune, memory.aprune, "t")
        kept = list(memory.checkpointer.list(bot.config))
        assert len(kept) == 2 and newest is not None
        assert kept[0].checkpoint["id"] == newest.checkpoint["id"]


def enter_thread_lock(memory: Memory, key: str) -> None:
    with memory.thread_lock(key):
        pass


async def aenter_thread_lock(memory: Memory, key: str) -> None:
    async with memory.athread_lock(key):
        pass


async def test_memory_thread_lock_twins_wait_the_memory_lock_timeout(api: Sync | Async) -> None:
    memory = open_memory("memory", lock_timeout=0.01)
    async with memory.locks.ahold("t", timeout=0):
        with pytest.raises(ThreadBusyError, match="Thread t is busy"):
            await api.call(enter_thread_lock, aenter_thread_lock, memory, "t")
    await api.call(enter_thread_lock, aenter_thread_lock, memory, "t")
