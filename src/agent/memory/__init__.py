"""Memory: checkpointer and store selection, the transcript archive, and thread administration.

    from agent.memory import open_memory, list_threads
    with open_memory() as memory:          # AGENT_DB_URL, else the SQLite file in the data dir
        for thread in list_threads(memory):
            print(thread.id, thread.title)

The names load on first use, so light submodules (config, errors) can be imported without
paying for LangGraph and the database drivers (the `agent` command starts faster).
See docs/memory.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.memory.archive import Archive, StoreArchive
    from agent.memory.config import Location, data_dir, default_sqlite_path, parse_location
    from agent.memory.errors import (
        DatabaseError,
        DatabaseFileError,
        DatabaseReadOnlyError,
        DatabaseUnavailableError,
        DatabaseURLError,
        DatabaseWriteError,
        InvalidThreadIdError,
        LockError,
        LockLostError,
        LockUnavailableError,
        ReplyNotSavedError,
        ThreadBusyError,
        ThreadNotFoundError,
    )
    from agent.memory.savers import Memory, migrate, open_memory, wrap_savers
    from agent.memory.threads import (
        ThreadInfo,
        delete_thread,
        export_thread,
        get_thread,
        list_threads,
        transcript,
    )

_HOMES = {
    "Archive": "archive",
    "StoreArchive": "archive",
    "Location": "config",
    "data_dir": "config",
    "default_sqlite_path": "config",
    "parse_location": "config",
    "DatabaseError": "errors",
    "DatabaseFileError": "errors",
    "DatabaseReadOnlyError": "errors",
    "DatabaseUnavailableError": "errors",
    "DatabaseURLError": "errors",
    "DatabaseWriteError": "errors",
    "InvalidThreadIdError": "errors",
    "LockError": "errors",
    "LockLostError": "errors",
    "LockUnavailableError": "errors",
    "ReplyNotSavedError": "errors",
    "ThreadBusyError": "errors",
    "ThreadNotFoundError": "errors",
    "Memory": "savers",
    "migrate": "savers",
    "open_memory": "savers",
    "wrap_savers": "savers",
    "ThreadInfo": "threads",
    "delete_thread": "threads",
    "export_thread": "threads",
    "get_thread": "threads",
    "list_threads": "threads",
    "transcript": "threads",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'agent.memory' has no attribute {name!r}")
    value = getattr(import_module(f"agent.memory.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Archive",
    "DatabaseError",
    "DatabaseFileError",
    "DatabaseReadOnlyError",
    "DatabaseURLError",
    "DatabaseUnavailableError",
    "DatabaseWriteError",
    "InvalidThreadIdError",
    "LockError",
    "LockLostError",
    "LockUnavailableError",
    "ReplyNotSavedError",
    "Location",
    "Memory",
    "StoreArchive",
    "ThreadBusyError",
    "ThreadInfo",
    "ThreadNotFoundError",
    "data_dir",
    "default_sqlite_path",
    "delete_thread",
    "export_thread",
    "get_thread",
    "list_threads",
    "migrate",
    "open_memory",
    "parse_location",
    "transcript",
    "wrap_savers",
]
