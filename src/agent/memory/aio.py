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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
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
    """AsyncPostgresSaver and AsyncPostgresStore on one AsyncConnectionPool."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres import AsyncPostgresStore
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    from agent.memory.postgres import CONNECT_TIMEOUT, POOL_SIZE, connection_kwargs

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        location.target,
        min_size=1,
        max_size=POOL_SIZE,
        kwargs=connection_kwargs(),
        open=False,
        name="agent-memory-async",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except PoolTimeout as error:
        await pool.close()
        raise DatabaseUnavailableError(location.describe(), error, location.advice()) from error
    return AsyncMemory(
        location, AsyncPostgresSaver(pool), AsyncPostgresStore(pool), closers=[pool.close]
    )
