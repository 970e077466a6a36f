"""Native async memory for async-only applications: AsyncSqliteSaver/AsyncPostgresSaver.

`open_memory()` already serves async runs (its savers run in worker threads) from any event
loop; use this instead when every call happens on one event loop and you want the savers' own
async drivers (aiosqlite, an AsyncConnectionPool):

    async with await aopen_memory() as memory:
        graph = build_graph(checkpointer=memory.checkpointer, store=memory.store)
        await graph.ainvoke(...)

These savers are bound to the loop that opened them and cannot be called synchronously from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from agent.memory.archive import StoreArchive
from agent.memory.config import Kind, Location, parse_location
from agent.memory.errors import DatabaseUnavailableError
from agent.memory.savers import SQLITE_BUSY_TIMEOUT, migrate


@dataclass(eq=False)
class AsyncMemory:
    """A database's native async checkpointer and store; `await aclose()` when done."""

    location: Location
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def kind(self) -> Kind:
        """'memory', 'sqlite' or 'postgres'."""
        return self.location.kind

    @property
    def archive(self) -> StoreArchive:
        """The transcript archive on this memory's store (use its async methods)."""
        return StoreArchive(self.store)

    async def aclose(self) -> None:
        """Close the connections this memory opened."""
        while self.closers:
            await self.closers.pop()()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def aopen_memory(url: str | None = None, *, setup: bool = True) -> AsyncMemory:
    """Open AGENT_DB_URL (or `url`) with native async savers; migrations run first if `setup`."""
    location = parse_location(url)
    if location.kind == "memory":
        return AsyncMemory(location, InMemorySaver(), InMemoryStore())
    if setup:  # the same lock-guarded migration as open_memory, off the event loop
        await asyncio.to_thread(migrate, url)
    if location.kind == "sqlite":
        return await _open_sqlite(location)
    return await _open_postgres(location)


async def _open_sqlite(location: Location) -> AsyncMemory:
    """AsyncSqliteSaver and AsyncSqliteStore on two aiosqlite connections to one file."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.store.sqlite import AsyncSqliteStore

    saver_conn = await aiosqlite.connect(location.target, timeout=SQLITE_BUSY_TIMEOUT)
    store_conn = await aiosqlite.connect(
        location.target, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None
    )
    return AsyncMemory(
        location,
        AsyncSqliteSaver(saver_conn),
        AsyncSqliteStore(store_conn),
        closers=[saver_conn.close, store_conn.close],
    )


async def _open_postgres(location: Location) -> AsyncMemory:
    """The native async saver and store, each on its own pool; the saver's sync side on a third.

    AsyncPostgresSaver.aput holds a pooled connection while it serializes in a worker thread,
    and LangGraph's sync nodes (and any sync twin run with asyncio.to_thread) call the saver's
    sync methods from worker threads. Served by the loop on the same pool, 20 such aputs and a
    full executor deadlock each other (seen at 20 concurrent conversations); here sync calls go
    to a sync PostgresSaver on its own pool and never wait for the loop. The store's async calls
    never need a worker thread, so its own pool is enough.
    """
    from langgraph.store.postgres import AsyncPostgresStore
    from psycopg_pool import ConnectionPool

    from agent.memory.postgres import POOL_SIZE, PostgresCheckpointer, connection_kwargs

    saver_pool = await _async_pool(location, "agent-memory-async-saver")
    closers: list[Callable[[], Awaitable[None]]] = [saver_pool.close]
    try:
        store_pool = await _async_pool(location, "agent-memory-async-store")
        closers.append(store_pool.close)
        sync_pool: ConnectionPool[Any] = ConnectionPool(
            location.target, min_size=1, max_size=POOL_SIZE, kwargs=connection_kwargs(),
            open=False, name="agent-memory-async-sync-side",
        )  # fmt: skip
        closers.append(lambda: asyncio.to_thread(sync_pool.close))
        await asyncio.to_thread(_open_sync_pool, sync_pool, location)
    except BaseException:
        for close in reversed(closers):
            await close()
        raise
    sync_saver = PostgresCheckpointer(sync_pool)
    sync_saver.location = location
    return AsyncMemory(
        location,
        _native_postgres_saver(saver_pool, sync_saver),
        AsyncPostgresStore(store_pool),
        closers=closers,
    )


def _open_sync_pool(pool: Any, location: Location) -> None:
    """Open a sync pool, or DatabaseUnavailableError."""
    from psycopg_pool import PoolTimeout

    from agent.memory.postgres import CONNECT_TIMEOUT

    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except PoolTimeout as error:
        raise DatabaseUnavailableError(location.describe(), error, location.advice()) from error


def _native_postgres_saver(pool: Any, sync_saver: BaseCheckpointSaver[Any]) -> Any:
    """An AsyncPostgresSaver whose sync methods run on `sync_saver` instead of the loop."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    class NativePostgresSaver(AsyncPostgresSaver):
        """Async methods native; sync ones (from worker threads) on a sync saver."""

        def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
            """Sync `get_tuple`, on the sync saver."""
            return sync_saver.get_tuple(config)

        def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
            """Sync `list`, on the sync saver."""
            return sync_saver.list(config, **kwargs)

        def put(self, config: RunnableConfig, *args: Any) -> RunnableConfig:
            """Sync `put`, on the sync saver."""
            return sync_saver.put(config, *args)

        def put_writes(self, config: RunnableConfig, *args: Any) -> None:
            """Sync `put_writes`, on the sync saver."""
            sync_saver.put_writes(config, *args)

        def delete_thread(self, thread_id: str) -> None:
            """Sync `delete_thread`, on the sync saver."""
            sync_saver.delete_thread(thread_id)

    return NativePostgresSaver(pool)


async def _async_pool(location: Location, name: str) -> Any:
    """An open AsyncConnectionPool, or DatabaseUnavailableError."""
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    from agent.memory.postgres import CONNECT_TIMEOUT, POOL_SIZE, connection_kwargs

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        location.target,
        min_size=1,
        max_size=POOL_SIZE,
        kwargs=connection_kwargs(),
        open=False,
        name=name,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except PoolTimeout as error:
        await pool.close()
        raise DatabaseUnavailableError(location.describe(), error, location.advice()) from error
    return pool
