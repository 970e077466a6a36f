"""One turn at a time per thread, across processes: the lock a turn holds from input to save.

Each backend offers a non-blocking `try_acquire(key)` returning a release function (or None when
the key is taken); `hold`/`ahold` poll it until the timeout, then raise ThreadBusyError.
- PostgreSQL: a session advisory lock on a pooled connection (released by the server if the
  process dies, since its connection closes);
- SQLite: `flock` on a lock file beside the database (released by the kernel if the process dies);
- memory: a `threading.Lock` per key (one process is all there is).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from agent.memory.errors import ThreadBusyError

Release = Callable[[], None]
LOCK_BUCKETS = 1024
FIRST_POLL = 0.01
MAX_POLL = 0.1


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a thread id (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"agent-thread:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ThreadLocks:
    """Polls a backend's non-blocking lock until it is free or the timeout passes."""

    def try_acquire(self, key: str) -> Release | None:
        """Take the lock for `key` now, or return None if someone holds it."""
        raise NotImplementedError

    @contextlib.contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[None]:
        """Hold the lock for `key` for the block's duration; ThreadBusyError after `timeout`."""
        release = self._wait(key, timeout)
        try:
            yield
        finally:
            release()

    @contextlib.asynccontextmanager
    async def ahold(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Async `hold`: waits without blocking the event loop."""
        release = await self._await(key, timeout)
        try:
            yield
        finally:
            await asyncio.to_thread(release)

    def _wait(self, key: str, timeout: float) -> Release:
        started, pause = time.monotonic(), FIRST_POLL
        while (release := self.try_acquire(key)) is None:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise ThreadBusyError(key, waited)
            time.sleep(min(pause, max(timeout - waited, 0.0)))
            pause = min(pause * 2, MAX_POLL)
        return release

    async def _await(self, key: str, timeout: float) -> Release:
        started, pause = time.monotonic(), FIRST_POLL
        while (release := await asyncio.to_thread(self.try_acquire, key)) is None:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise ThreadBusyError(key, waited)
            await asyncio.sleep(min(pause, max(timeout - waited, 0.0)))
            pause = min(pause * 2, MAX_POLL)
        return release


class ProcessLocks(ThreadLocks):
    """In-process locks, for in-memory savers that no other process can see anyway."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def try_acquire(self, key: str) -> Release | None:
        """Take this key's threading.Lock without waiting."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        return lock.release if lock.acquire(blocking=False) else None


class FileLocks(ThreadLocks):
    """`flock` on one of LOCK_BUCKETS files in `directory`: bounded files, any number of threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        """The lock file a key hashes to (two keys may share one: they then take turns)."""
        return self.directory / f"{lock_key(key) % LOCK_BUCKETS:04d}.lock"

    def try_acquire(self, key: str) -> Release | None:
        """Open the key's lock file and try an exclusive flock on it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path_for(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return lambda: os.close(fd)  # closing the descriptor releases the flock


class AdvisoryLocks(ThreadLocks):
    """PostgreSQL session advisory locks, each held on its own pooled connection."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def try_acquire(self, key: str) -> Release | None:
        """Try `pg_try_advisory_lock` on a connection kept out of the pool while it is held."""
        number = lock_key(key)
        conn = self.pool.getconn()
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (number,)).fetchone()
        except BaseException:
            self.pool.putconn(conn)
            raise
        if not row or not row["locked"]:
            self.pool.putconn(conn)
            return None

        def release() -> None:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (number,))
            except Exception:
                conn.close()  # a closed session drops its locks; the pool replaces it
            finally:
                self.pool.putconn(conn)

        return release
