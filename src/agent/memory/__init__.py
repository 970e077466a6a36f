"""Memory: checkpointer and store selection, the transcript archive, and thread administration.

    from agent.memory import open_memory, list_threads
    with open_memory() as memory:          # AGENT_DB_URL, else the SQLite file in the data dir
        for thread in list_threads(memory):
            print(thread.id, thread.title)

See docs/memory.md.
"""

from agent.memory.archive import Archive, StoreArchive
from agent.memory.config import Location, data_dir, default_sqlite_path, parse_location
from agent.memory.errors import (
    DatabaseUnavailableError,
    DatabaseURLError,
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

__all__ = [
    "Archive",
    "DatabaseURLError",
    "DatabaseUnavailableError",
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
