"""PostgreSQL turn locks: many threads on one lock connection, and what happens when it dies."""

from __future__ import annotations

import threading

import psycopg
import pytest

from agent.memory import LockLostError, ThreadBusyError, open_memory
from tests.integration.test_memory_support import pg_fixture

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

pg_url = pg_fixture()
HELD = 50  # more than the saver/store pool's 20 connections


def lock_sessions(url: str) -> list[int]:
    """The server processes holding advisory locks in this test's database."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
        ).fetchall()
    return [row[0] for row in rows]


def test_fifty_threads_held_at_once_use_one_session_and_leave_the_pool_free(pg_url: str) -> None:
    with open_memory(pg_url) as memory:
        all_held, done = threading.Barrier(HELD + 1), threading.Event()
        errors: list[BaseException] = []

        def hold(n: int) -> None:
            try:
                with memory.thread_lock(f"t{n}"):
                    all_held.wait()
                    done.wait()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        holders = [threading.Thread(target=hold, args=(n,)) for n in range(HELD)]
        for holder in holders:
            holder.start()
        try:
            all_held.wait()
            assert len(lock_sessions(pg_url)) == 1  # every lock on the one lock connection
            assert memory.store.get(("threads",), "t0") is None  # the pool still serves
            with open_memory(pg_url, lock_timeout=0) as other:  # another process's view
                with pytest.raises(ThreadBusyError):
                    with other.thread_lock("t7"):
                        pass
        finally:
            done.set()
            for holder in holders:
                holder.join()
        assert errors == []
        assert lock_sessions(pg_url) == []  # all released


def test_a_dropped_lock_connection_is_reported_and_replaced(pg_url: str) -> None:
    with open_memory(pg_url) as memory, open_memory(pg_url, lock_timeout=0) as other:
        with pytest.raises(LockLostError, match="Thread t lost its lock"):
            with memory.thread_lock("t"):
                (session,) = lock_sessions(pg_url)
                with psycopg.connect(pg_url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (session,))
                with other.thread_lock("t"):  # the server released it: others may write now
                    pass
        with memory.thread_lock("t"):  # a new lock connection serves the next turns
            assert len(lock_sessions(pg_url)) == 1
            with pytest.raises(ThreadBusyError):
                with other.thread_lock("t"):
                    pass


def test_an_error_inside_a_lost_lock_is_the_error_reported(pg_url: str) -> None:
    with open_memory(pg_url) as memory:
        with pytest.raises(KeyError, match="the turn's own error"):
            with memory.thread_lock("t"):
                (session,) = lock_sessions(pg_url)
                with psycopg.connect(pg_url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (session,))
                raise KeyError("the turn's own error")
