"""One turn at a time per thread, across processes: the lock a turn holds from input to save.

Two layers, so concurrency is never capped by a connection pool:
1. In-process: waiters of one process (OS threads and event-loop tasks alike) queue on a
   per-thread-id lock, first come first served; only its holder goes on to layer 2.
2. Cross-process (`SharedLocks`), tried without blocking and polled until the timeout:
   - PostgreSQL: session advisory locks, all of a process's on ONE dedicated connection (outside
     the saver/store pool); the server drops them if the process dies. If that connection dies,
     its locks are gone: the holders learn it when they release (LockLostError), and the next
     lock taken opens a new connection;
   - SQLite: `flock` on a lock file beside the database (dropped by the kernel if the process
     dies);
   - memory: none (no other process can see the data).

`ThreadLocks.hold` and `ahold` share every rule; they differ only in how they wait (a blocking
event versus an awaited future and `asyncio.sleep`), so the async side never occupies a worker
thread while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.memory.errors import LockError, LockLostError, LockUnavailableError, ThreadBusyError

log = logging.getLogger(__name__)

Release = Callable[[], None]
LOCK_BUCKETS = 1024
FIRST_POLL = 0.01
MAX_POLL = 0.1


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a thread id (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"agent-thread:{name}".encode(errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- layer 1: the in-process queue ------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    """One queued waiter: how to wake it, and whether the lock was handed to it."""

    wake: Callable[[], object]
    granted: bool = False


def _resolve(future: asyncio.Future[None]) -> None:
    """Complete a waiter's future (on its own event loop)."""
    if not future.done():
        future.set_result(None)


class LocalLocks:
    """Per-key FIFO locks shared by the OS threads and event loops of one process.

    A released key is handed straight to its oldest waiter (no stampede, no polling).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._queues: dict[str, deque[_Waiter]] = {}  # a key is held while it is in here

    def _enter(self, key: str, waiter: _Waiter) -> bool:
        """Take a free key (True), or queue the waiter (False)."""
        with self._guard:
            if key not in self._queues:
                self._queues[key] = deque()
                return True
            self._queues[key].append(waiter)
            return False

    def _leave(self, key: str, waiter: _Waiter) -> bool:
        """Stop waiting; True if the key was handed over meanwhile (the caller now holds it)."""
        with self._guard:
            if waiter.granted:
                return True
            self._queues[key].remove(waiter)
            return False

    def release(self, key: str) -> None:
        """Hand the key to its oldest live waiter, or free it."""
        with self._guard:
            queue = self._queues[key]
            while queue:
                waiter = queue.popleft()
                waiter.granted = True
                try:
                    waiter.wake()
                    return
                except RuntimeError:  # its event loop is closed: nobody waits there any more
                    continue
            del self._queues[key]

    def acquire(self, key: str, timeout: float) -> bool:
        """Take the key, waiting up to `timeout` seconds; False if it stayed taken."""
        event = threading.Event()
        waiter = _Waiter(event.set)
        if self._enter(key, waiter) or event.wait(max(timeout, 0.0)):
            return True
        return self._leave(key, waiter)

    async def aacquire(self, key: str, timeout: float) -> bool:
        """Async `acquire`: waits on a future, never blocking the event loop or a worker."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(lambda: loop.call_soon_threadsafe(_resolve, future))
        if self._enter(key, waiter):
            return True
        try:
            await asyncio.wait_for(asyncio.shield(future), max(timeout, 0.0))
            return True
        except TimeoutError:
            return self._leave(key, waiter)
        except BaseException:  # cancelled while queued: pass the key on if it just arrived
            if self._leave(key, waiter):
                self.release(key)
            raise


# --- layer 2: the cross-process lock ------------------------------------------------------------


class SharedLocks(Protocol):
    """A backend's cross-process lock: tried without blocking; `close` drops every lock held."""

    def try_acquire(self, key: str) -> Release | None:
        """Take the lock for `key` now, or return None if another process holds it.

        The returned function releases it, raising LockLostError if it was lost meanwhile.
        """

    def close(self) -> None:
        """Release everything (close files or the lock connection)."""


def polls(key: str, deadline: float) -> Iterator[float]:
    """Pauses between tries of a cross-process lock; ThreadBusyError once the deadline passes.

    The caller tries first, and asks for the next pause only while another process holds it.
    """
    started, pause = time.monotonic(), FIRST_POLL
    while (left := deadline - time.monotonic()) > 0:
        yield min(pause, left)
        pause = min(pause * 2, MAX_POLL)
    raise ThreadBusyError(key, time.monotonic() - started)


def _no_lock() -> None:
    """The release of a lock that only this process needed."""


def _release_late(attempt: asyncio.Future[Release | None]) -> None:
    """Release a lock an abandoned (cancelled) attempt took after all."""
    if not attempt.cancelled() and attempt.exception() is None:
        release = attempt.result()
        if release is not None:
            _release_quietly(release, "(abandoned attempt)")


class ThreadLocks:
    """Hold a thread for one turn: the in-process queue, then the backend's shared lock (if any)."""

    def __init__(self, shared: SharedLocks | None = None) -> None:
        self.local = LocalLocks()
        self.shared = shared

    def _take_shared(self, key: str, deadline: float) -> Release:
        """Poll the cross-process lock until it is ours or the deadline passes."""
        if self.shared is None:
            return _no_lock
        pauses = polls(key, deadline)
        while (release := self.shared.try_acquire(key)) is None:
            time.sleep(next(pauses))
        return release

    async def _atake_shared(self, key: str, deadline: float) -> Release:
        """Async `_take_shared`; each try runs in a worker thread (a database round trip)."""
        if self.shared is None:
            return _no_lock
        pauses = polls(key, deadline)
        while (release := await self._atry_shared(self.shared, key)) is None:
            await asyncio.sleep(next(pauses))
        return release

    @staticmethod
    async def _atry_shared(shared: SharedLocks, key: str) -> Release | None:
        """One try in a worker thread; if the caller is cancelled meanwhile, nothing leaks."""
        attempt = asyncio.ensure_future(asyncio.to_thread(shared.try_acquire, key))
        try:
            return await asyncio.shield(attempt)
        except BaseException:
            attempt.add_done_callback(_release_late)
            raise

    @contextlib.contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[None]:
        """Hold the lock for `key` for the block's duration.

        Args:
            key: The thread id.
            timeout: Seconds to wait for another holder (in this or another process).

        Raises:
            ThreadBusyError: If the thread stayed busy for `timeout` seconds.
            LockUnavailableError: If the lock itself cannot be taken (lock files, connection).
            LockLostError: On leaving the block, if the lock was lost while it was held.
        """
        deadline = time.monotonic() + timeout
        if not self.local.acquire(key, timeout):
            raise ThreadBusyError(key, timeout)
        try:
            release = self._take_shared(key, deadline)
            try:
                yield
            except BaseException:
                _release_quietly(release, key)  # the block's own error is the one to report
                raise
            release()
        finally:
            self.local.release(key)

    @contextlib.asynccontextmanager
    async def ahold(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Async `hold`: the same rules, waiting without blocking the event loop."""
        deadline = time.monotonic() + timeout
        if not await self.local.aacquire(key, timeout):
            raise ThreadBusyError(key, timeout)
        try:
            release = await self._atake_shared(key, deadline)
            try:
                yield
            except BaseException:
                await self._arelease(release, key, quietly=True)
                raise
            await self._arelease(release, key)
        finally:
            self.local.release(key)

    async def _arelease(self, release: Release, key: str, *, quietly: bool = False) -> None:
        """Release a shared lock in a worker thread (a database round trip), if there is one."""
        if release is _no_lock:
            return
        if quietly:
            await asyncio.to_thread(_release_quietly, release, key)
        else:
            await asyncio.to_thread(release)

    def close(self) -> None:
        """Drop the cross-process locks (a closed memory holds none)."""
        if self.shared is not None:
            self.shared.close()


def _release_quietly(release: Release, key: str) -> None:
    """Release while another error propagates: a lost lock is logged, not raised over it."""
    try:
        release()
    except LockError as error:
        log.warning("Thread %s: %s", key, error)


# --- SQLite: lock files -------------------------------------------------------------------------


class FileLocks:
    """`flock` on one of LOCK_BUCKETS files in `directory`: bounded files, any number of threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        """The lock file a key hashes to (two keys may share one: they then take turns)."""
        return self.directory / f"{lock_key(key) % LOCK_BUCKETS:04d}.lock"

    def try_acquire(self, key: str) -> Release | None:
        """Open the key's lock file and try an exclusive flock on it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path_for(key), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise LockUnavailableError(key, f"lock file in {self.directory}", error) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return lambda: os.close(fd)  # closing the descriptor releases the flock

    def close(self) -> None:
        """Nothing to close: each lock's descriptor closes when it is released."""


# --- PostgreSQL: advisory locks on one connection -----------------------------------------------


class AdvisoryLocks:
    """PostgreSQL session advisory locks for any number of keys, on ONE dedicated connection.

    `connect` opens that connection (autocommit); it is opened on first use and again after it
    died. A lock records the connection's generation: released on a later generation (the old
    session, and its locks, are gone), it raises LockLostError instead of pretending.
    """

    def __init__(self, connect: Callable[[], Any], where: str) -> None:
        self._connect = connect
        self.where = where
        self._mutex = threading.Lock()
        self._conn: Any = None
        self._generation = 0

    def _connection(self, key: str) -> Any:
        """The live lock connection, opened anew if there is none (caller holds the mutex)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop()
        try:
            self._conn = self._connect()
        except Exception as error:
            raise LockUnavailableError(key, f"lock connection to {self.where}", error) from error
        self._generation += 1
        return self._conn

    def _drop(self) -> None:
        """Forget a dead (or closing) connection; the server has dropped its locks."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def try_acquire(self, key: str) -> Release | None:
        """`pg_try_advisory_lock` on the lock connection."""
        number = lock_key(key)
        with self._mutex:
            conn = self._connection(key)
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (number,)).fetchone()
            except Exception as error:
                self._drop()
                raise LockUnavailableError(
                    key, f"lock connection to {self.where}", error
                ) from error
            generation = self._generation
        if not row or not _first(row):
            return None
        return lambda: self._release(key, number, generation)

    def _release(self, key: str, number: int, generation: int) -> None:
        """Unlock on the same session, or report that the session (and the lock) died."""
        with self._mutex:
            if generation != self._generation or self._conn is None:
                raise LockLostError(key, self.where)
            try:
                row = self._conn.execute("SELECT pg_advisory_unlock(%s)", (number,)).fetchone()
            except Exception as error:
                self._drop()
                raise LockLostError(key, self.where) from error
        if not row or not _first(row):
            raise LockLostError(key, self.where)

    def close(self) -> None:
        """Close the lock connection (the server releases every lock on it)."""
        with self._mutex:
            self._drop()
            self._generation += 1


def _first(row: Any) -> Any:
    """The first column of a row, whatever the connection's row factory."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
