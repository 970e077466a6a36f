"""Open memory: the checkpointer, the store and the per-thread housekeeping for one database.

`open_memory()` reads AGENT_DB_URL (see `agent.memory.config`) and returns a `Memory` whose
checkpointer and store serve both the sync API (`invoke`/`stream`) and the async one
(`ainvoke`/`astream`) from any thread or event loop: they are the sync savers, and their async
methods run the sync ones in a worker thread (what aiosqlite does for SQLite anyway). Native async
savers bound to one event loop are in `agent.memory.aio` for async-only applications.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.base import BaseStore, Op, Result
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from agent.errors import AgentError
from agent.memory.archive import StoreArchive
from agent.memory.config import Kind, Location, parse_location
from agent.memory.errors import (
    DatabaseFileError,
    DatabaseUnavailableError,
    LockUnavailableError,
)
from agent.memory.failures import NOT_A_DATABASE_ADVICE, database_errors
from agent.memory.locking import FileLocks, ThreadLocks
from agent.memory.pruning import prune_saver

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 10
PRUNE_EVERY = 5
LOCK_TIMEOUT = 60.0
SQLITE_BUSY_TIMEOUT = 30.0


class ThreadedAsyncSaver(BaseCheckpointSaver[str]):
    """Async checkpoint methods that run the sync ones in a worker thread, on any event loop."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async `get_tuple`."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async `list` (fetched in one go: callers page with `limit`)."""
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async `put`."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async `put_writes`."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async `delete_thread`."""
        await asyncio.to_thread(self.delete_thread, thread_id)


class TypedErrorsSaver(BaseCheckpointSaver[str]):
    """Checkpoint calls that raise `DatabaseError`s naming `location`, never driver errors."""

    location = Location("memory", "memory")  # open_memory sets the real one

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """`get_tuple`, typed errors."""
        with database_errors(self.location):
            return super().get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """`list`, typed errors."""
        with database_errors(self.location):
            yield from super().list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """`put`, typed errors."""
        with database_errors(self.location):
            return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`put_writes`, typed errors."""
        with database_errors(self.location):
            super().put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """`delete_thread`, typed errors."""
        with database_errors(self.location):
            super().delete_thread(thread_id)


class TypedErrorsStore(BaseStore):
    """Store calls that raise `DatabaseError`s naming `location` (every call goes via batch)."""

    location = Location("memory", "memory")  # open_memory sets the real one

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """`batch`, typed errors."""
        with database_errors(self.location):
            return super().batch(ops)  # type: ignore[safe-super]


class SqliteCheckpointer(ThreadedAsyncSaver, TypedErrorsSaver, SqliteSaver):
    """SqliteSaver that also serves async runs and raises typed errors."""


class SqliteTranscriptStore(TypedErrorsStore, SqliteStore):
    """SqliteStore that also serves async runs (the stock one raises on async calls)."""

    async def abatch(self, ops: Any) -> list[Result]:
        """Async `batch`, in a worker thread."""
        batch: list[Op] = list(ops)
        return await asyncio.to_thread(self.batch, batch)


@dataclass(eq=False)
class Memory:
    """A database's checkpointer and store, plus what a turn needs around them.

    - `checkpointer`/`store`: hand them to `build_graph`; the store holds the transcript and the
      threads' metadata;
    - `thread_lock(thread_id)`: hold it for a whole turn so two writers never interleave;
    - `prune(thread_id)`: keep only the newest `keep_checkpoints` checkpoints of a thread (turns
      do it every `prune_every` exchanges);
    - `close()`: release connections (also `with open_memory() as memory:`).
    """

    location: Location
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    locks: ThreadLocks
    keep_checkpoints: int = KEEP_CHECKPOINTS
    prune_every: int = PRUNE_EVERY
    lock_timeout: float = LOCK_TIMEOUT
    closers: list[Callable[[], None]] = field(default_factory=list)
    # After-reply work (summary, facts) running on this memory: close() lets it finish first.
    working: weakref.WeakSet[threading.Thread] = field(default_factory=weakref.WeakSet)

    @property
    def kind(self) -> Kind:
        """'memory', 'sqlite' or 'postgres'."""
        return self.location.kind

    @property
    def archive(self) -> StoreArchive:
        """The transcript archive on this memory's store."""
        return StoreArchive(self.store)

    def describe(self) -> str:
        """Where this memory lives, password hidden."""
        return self.location.describe()

    def thread_lock(self, thread_id: str) -> contextlib.AbstractContextManager[None]:
        """Hold a thread for one turn; waits up to `lock_timeout`, then ThreadBusyError."""
        return self.locks.hold(thread_id, self.lock_timeout)

    def athread_lock(self, thread_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Async `thread_lock`."""
        return self.locks.ahold(thread_id, self.lock_timeout)

    def prune(self, thread_id: str) -> None:
        """Drop all but the thread's newest checkpoints (hold the thread's lock meanwhile)."""
        with database_errors(self.location):
            prune_saver(self.checkpointer, thread_id, self.keep_checkpoints)

    def prune_due(self, message_count: int) -> bool:
        """Whether a turn that brought the thread to `message_count` messages should prune.

        Every `prune_every` exchanges, not every turn: a prune is a write (an fsync on SQLite),
        and a thread holds at most keep_checkpoints + prune_every - 1 checkpoints either way.
        """
        return (message_count // 2) % self.prune_every == 0

    async def aprune(self, thread_id: str) -> None:
        """Async `prune`."""
        await asyncio.to_thread(self.prune, thread_id)

    def close(self) -> None:
        """Let after-reply work finish, then close the connections this memory opened.

        Closing a SQLite connection under a thread still using it crashes the interpreter, so
        work a Chatbot left running on a shared memory is joined first.
        """
        for thread in list(self.working):
            if thread is not threading.current_thread():
                thread.join()
        while self.closers:
            self.closers.pop()()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# Savers handed in by a caller have no lock of their own: share one per saver in this process.
_CALLER_SAVER_LOCKS: weakref.WeakKeyDictionary[object, ThreadLocks] = weakref.WeakKeyDictionary()


def wrap_savers(
    checkpointer: BaseCheckpointSaver[Any] | None = None, store: BaseStore | None = None
) -> Memory:
    """A Memory around savers the caller built and owns (closing it leaves them open)."""
    saver = checkpointer if checkpointer is not None else InMemorySaver()
    locks = _CALLER_SAVER_LOCKS.setdefault(saver, ThreadLocks())
    postgres = sys.modules.get("langgraph.checkpoint.postgres")
    kind: Kind = (
        "sqlite"
        if isinstance(saver, SqliteSaver)
        else "postgres"
        if postgres is not None and isinstance(saver, postgres.PostgresSaver)
        else "memory"
    )
    return Memory(
        location=Location(kind, f"caller's {type(saver).__name__}"),
        checkpointer=saver,
        store=store if store is not None else InMemoryStore(),
        locks=locks,
    )


def open_memory(
    url: str | None = None,
    *,
    setup: bool = True,
    keep_checkpoints: int = KEEP_CHECKPOINTS,
    prune_every: int = PRUNE_EVERY,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Memory:
    """Open the memory AGENT_DB_URL (or `url`) names; `setup` runs pending migrations safely."""
    if keep_checkpoints < 1 or prune_every < 1:
        raise ValueError(
            f"keep_checkpoints and prune_every must be >= 1, got {keep_checkpoints!r} "
            f"and {prune_every!r}."
        )
    location = parse_location(url)
    if location.kind == "sqlite":
        memory = _open_sqlite(location)
    elif location.kind == "postgres":
        from agent.memory.postgres import open_postgres  # psycopg loads only when needed

        memory = open_postgres(location, setup=setup)
    else:
        memory = Memory(location, InMemorySaver(), InMemoryStore(), ThreadLocks())
    memory.keep_checkpoints = keep_checkpoints
    memory.prune_every = prune_every
    memory.lock_timeout = lock_timeout
    return memory


def migrate(url: str | None = None) -> str:
    """Create or upgrade the database's tables (safe when several processes run it at once)."""
    with open_memory(url, setup=True) as memory:
        return memory.describe()


# --- SQLite -----------------------------------------------------------------------------------


def sqlite_lock_dir(path: Path) -> Path:
    """Lock files live beside the database: `agent.db` -> `agent.db-locks/`."""
    return path.with_name(path.name + "-locks")


def _connect_sqlite(path: Path, *, autocommit: bool) -> sqlite3.Connection:
    """A connection usable from any thread, that waits (not fails) while another writer commits."""
    conn = sqlite3.connect(
        path,
        check_same_thread=False,
        timeout=SQLITE_BUSY_TIMEOUT,
        isolation_level=None if autocommit else "DEFERRED",
    )
    return conn


@contextlib.contextmanager
def _migration_file_lock(directory: Path) -> Iterator[None]:
    """An exclusive flock for schema setup, so two processes never run it at once."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / "migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        what = f"lock file in {directory}"
        raise LockUnavailableError("the schema setup", what, error) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create_sqlite(path: Path) -> None:
    """Create a new database whole: schema written to a temporary file, then renamed into place.

    So `agent.db` never exists empty by our doing, and a 0-byte file found there is refused (a
    failed copy or a full disk, not a database to start afresh in).
    """
    temporary = path.with_name(f"{path.name}.creating-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    conn = _connect_sqlite(temporary, autocommit=True)
    try:
        SqliteSaver(conn).setup()
        SqliteStore(conn).setup()
    finally:
        conn.close()  # checkpoints the write-ahead log into the file
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename survives a power cut
    finally:
        os.close(directory)


def _require_usable_file(path: Path, location: Location) -> None:
    """Refuse an existing database file that is empty (it would silently become a new one)."""
    if path.is_file() and path.stat().st_size == 0:
        raise DatabaseFileError(
            location.describe(), "the file is empty (0 bytes)", NOT_A_DATABASE_ADVICE
        )


def _open_sqlite(location: Location) -> Memory:
    """SQLite saver and store on two connections to one WAL file, set up under a file lock."""
    path = Path(location.target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with database_errors(location), _migration_file_lock(sqlite_lock_dir(path)):
            _require_usable_file(path, location)
            if not path.exists():
                _create_sqlite(path)
            return _sqlite_memory(path, location)
    except OSError as error:
        if isinstance(error, AgentError):  # DatabaseUnavailableError is a ConnectionError
            raise
        raise DatabaseUnavailableError(location.describe(), error, location.advice()) from error


def _sqlite_memory(path: Path, location: Location) -> Memory:
    """The memory on an existing database file (its schema upgraded if needed)."""
    saver = SqliteCheckpointer(_connect_sqlite(path, autocommit=False))
    store = SqliteTranscriptStore(_connect_sqlite(path, autocommit=True))
    saver.location = store.location = location
    locks = ThreadLocks(FileLocks(sqlite_lock_dir(path)))
    memory = Memory(
        location, saver, store, locks, closers=[saver.conn.close, store.conn.close, locks.close]
    )
    try:
        saver.setup()
        store.setup()
    except BaseException:
        memory.close()
        raise
    return memory
