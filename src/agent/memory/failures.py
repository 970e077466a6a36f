"""Turn database-driver failures into the typed errors of `agent.memory.errors`.

The project's savers and store (see savers.py, postgres.py) run every database call inside
`database_errors(location)`, so a read-only file, a broken connection or a refused write
reaches the caller as a `DatabaseError` naming the database and what to do, never as a raw
`sqlite3`/`psycopg` error that a CLI would mistake for a model failure.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from agent.errors import AgentError
from agent.memory.config import Location
from agent.memory.errors import (
    DatabaseError,
    DatabaseFileError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    DatabaseWriteError,
)

READ_ONLY_ADVICE = (
    "Make the database file and its directory writable (or free the disk), or choose another "
    "database."
)
NOT_A_DATABASE_ADVICE = (
    "Restore the file from a backup, or move it away to start a new, empty database there."
)


def _sqlite_error(error: sqlite3.Error, location: Location) -> DatabaseError:
    """The typed error for a failed SQLite call."""
    words, where = str(error).lower(), location.describe()
    if "readonly" in words or "read-only" in words:
        return DatabaseReadOnlyError(where, error, f"{READ_ONLY_ADVICE} {location.advice()}")
    if "not a database" in words or "malformed" in words:
        return DatabaseFileError(where, error, NOT_A_DATABASE_ADVICE)
    if "unable to open" in words:
        return DatabaseUnavailableError(where, error, location.advice())
    if "disk is full" in words or "disk i/o" in words:
        return DatabaseWriteError(where, error, "Free some disk space, then try again.")
    return DatabaseWriteError(where, error, location.advice())


def translate(error: BaseException, location: Location) -> DatabaseError | None:
    """The typed error for a database-driver failure, or None if `error` is not one."""
    if isinstance(error, AgentError):
        return None  # typed already (a lock error, or a database error raised deeper)
    if isinstance(error, sqlite3.Error):
        return _sqlite_error(error, location)
    psycopg = sys.modules.get("psycopg")  # loaded iff PostgreSQL is used
    pool = sys.modules.get("psycopg_pool")
    where = location.describe()
    if pool is not None and isinstance(error, pool.PoolTimeout):
        return DatabaseUnavailableError(where, error, location.advice())
    if psycopg is not None and isinstance(error, psycopg.OperationalError):
        return DatabaseUnavailableError(where, error, location.advice())
    if psycopg is not None and isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
        return DatabaseReadOnlyError(where, error, "Point the memory at a writable server.")
    if psycopg is not None and isinstance(error, psycopg.Error):
        return DatabaseWriteError(where, error, location.advice())
    return None


@contextmanager
def database_errors(location: Location) -> Iterator[None]:
    """Re-raise database-driver failures inside as typed `DatabaseError`s naming `location`."""
    try:
        yield
    except Exception as error:
        typed = translate(error, location)
        if typed is None:
            raise
        raise typed from error
