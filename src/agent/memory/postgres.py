"""PostgreSQL memory: a pooled saver and store, safe migrations, pruning (psycopg loads here)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.store.postgres import PostgresStore
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from agent.memory.config import Location
from agent.memory.errors import DatabaseUnavailableError
from agent.memory.failures import database_errors
from agent.memory.locking import AdvisoryLocks, ThreadLocks, lock_key
from agent.memory.savers import Memory, ThreadedAsyncSaver, TypedErrorsSaver, TypedErrorsStore

CONNECT_TIMEOUT = 10
POOL_SIZE = 20
MIGRATION_LOCK = lock_key("agent:migrations")
MIGRATION_POLL = 0.05


def connection_kwargs() -> dict[str, Any]:
    """What the LangGraph PostgreSQL savers need from a connection."""
    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


def lock_connection(location: Location) -> Any:
    """The connection that carries a process's advisory locks (kept out of the pool).

    TCP keepalives make a silently dropped connection fail within seconds, not hours.
    """
    return psycopg.connect(
        location.target,
        connect_timeout=CONNECT_TIMEOUT,
        autocommit=True,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        application_name="agent-locks",
    )


class PostgresCheckpointer(ThreadedAsyncSaver, TypedErrorsSaver, PostgresSaver):
    """PostgresSaver (on a connection pool) that also serves async runs and raises typed errors."""


class PostgresTranscriptStore(TypedErrorsStore, PostgresStore):
    """PostgresStore (on the same pool) that raises typed errors."""


POSTGRES_PRUNE = (
    """
    WITH ranked AS (
        SELECT checkpoint_ns, checkpoint_id, row_number() OVER (
            PARTITION BY checkpoint_ns ORDER BY checkpoint_id DESC
        ) AS newest
        FROM checkpoints WHERE thread_id = %(thread)s
    )
    DELETE FROM checkpoints c USING ranked r
    WHERE c.thread_id = %(thread)s AND c.checkpoint_ns = r.checkpoint_ns
    AND c.checkpoint_id = r.checkpoint_id AND r.newest > %(keep)s
    """,
    """
    DELETE FROM checkpoint_writes w
    WHERE w.thread_id = %(thread)s AND NOT EXISTS (
        SELECT 1 FROM checkpoints c
        WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns
        AND c.checkpoint_id = w.checkpoint_id
    )
    """,
    # Channel values live in blobs shared by checkpoints; drop those no kept checkpoint uses
    # (including blobs of a write that crashed before its checkpoint row was saved).
    """
    DELETE FROM checkpoint_blobs b
    WHERE b.thread_id = %(thread)s AND NOT EXISTS (
        SELECT 1 FROM checkpoints c
        WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
        AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
    )
    """,
)


def prune_postgres(conn_or_pool: Any, thread_id: str, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints of a thread, their writes and free blobs."""
    params = {"thread": thread_id, "keep": keep}
    borrowed = (
        conn_or_pool.connection()
        if hasattr(conn_or_pool, "getconn")
        else contextlib.nullcontext(conn_or_pool)
    )
    with borrowed as conn, conn.transaction():
        for statement in POSTGRES_PRUNE:
            conn.execute(statement, params)


def postgres_up_to_date(conn: Any) -> bool:
    """Whether both migration tables exist and are at the installed savers' newest version."""
    row = conn.execute(
        "SELECT to_regclass('checkpoint_migrations') IS NOT NULL AS saver, "
        "to_regclass('store_migrations') IS NOT NULL AS store"
    ).fetchone()
    if not row["saver"] or not row["store"]:
        return False
    row = conn.execute(
        "SELECT (SELECT max(v) FROM checkpoint_migrations) AS saver, "
        "(SELECT max(v) FROM store_migrations) AS store"
    ).fetchone()
    return bool(
        row["saver"] == len(PostgresSaver.MIGRATIONS) - 1
        and row["store"] == len(PostgresStore.MIGRATIONS) - 1
    )


def try_advisory_lock(conn: Any, key: int) -> bool:
    """Take a session advisory lock if it is free, without waiting."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (key,)).fetchone()
    return bool(row["locked"])


def migrate_postgres(conn: Any, saver: PostgresSaver, store: PostgresStore) -> None:
    """Run the savers' migrations under an advisory lock (concurrent setup() races otherwise)."""
    if postgres_up_to_date(conn):
        return
    # Poll rather than block in pg_advisory_lock: a waiting statement is an open transaction,
    # and the holder's CREATE INDEX CONCURRENTLY would wait for it forever.
    while not try_advisory_lock(conn, MIGRATION_LOCK):
        time.sleep(MIGRATION_POLL)
    try:
        if not postgres_up_to_date(conn):
            saver.setup()
            store.setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def open_postgres(location: Location, *, setup: bool) -> Memory:
    """A pooled saver and store; one direct connection reports errors, locks and migrates."""
    try:
        direct = psycopg.connect(
            location.target, connect_timeout=CONNECT_TIMEOUT, **connection_kwargs()
        )
    except psycopg.Error as error:
        raise DatabaseUnavailableError(location.describe(), error, location.advice()) from error
    with direct:
        pool: ConnectionPool[Any] = ConnectionPool(
            location.target,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs=connection_kwargs(),
            open=False,
            name="agent-memory",
        )
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        saver = PostgresCheckpointer(pool)
        store = PostgresTranscriptStore(pool)
        saver.location = store.location = location
        locks = ThreadLocks(AdvisoryLocks(lambda: lock_connection(location), location.describe()))
        memory = Memory(location, saver, store, locks, closers=[pool.close, locks.close])
        if setup:
            try:
                with database_errors(location):
                    migrate_postgres(direct, saver, store)
            except BaseException:
                memory.close()
                raise
    return memory
