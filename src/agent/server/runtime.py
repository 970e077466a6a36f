"""The running LangGraph server's own objects, for auth hooks that must look something up.

These modules exist only inside a server process (`langgraph_runtime` needs the runtime's
environment), so they are imported when a hook first runs, never at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

from langgraph.store.base import BaseStore

from agent.memory.archive import StoreArchive
from agent.memory.threads import THREADS


def _not_found(error: Exception) -> bool:
    """Whether the server answered an internal lookup with 404."""
    return getattr(error, "status_code", None) == 404


async def _first(kind: str, resource_id: Any) -> dict[str, Any] | None:
    """A thread or assistant as the current user may read it (the read hook applies), or None."""
    database = importlib.import_module("langgraph_runtime.database")
    ops = importlib.import_module("langgraph_runtime.ops")
    try:
        async with database.connect() as conn:
            found = await getattr(ops, kind).get(conn, resource_id)
            return dict(await anext(found))
    except StopAsyncIteration:
        return None
    except Exception as error:
        if _not_found(error):
            return None
        raise


async def readable_thread(thread_id: Any) -> dict[str, Any] | None:
    """The thread if it exists and the caller may read it, else None."""
    return await _first("Threads", thread_id)


async def readable_assistant(assistant_id: Any) -> dict[str, Any] | None:
    """The assistant if it exists and the caller may read it, else None."""
    return await _first("Assistants", assistant_id)


async def server_store() -> BaseStore:
    """The store the server gives its graphs (`runtime.store` inside a run)."""
    store = importlib.import_module("langgraph_api.store")
    found: BaseStore = await store.get_store()
    return found


async def forget_thread(store: BaseStore, thread_id: str) -> None:
    """Delete what the graph stored for a thread besides its checkpoints: archive and record."""
    await StoreArchive(store).adelete(thread_id)
    await store.adelete(THREADS, thread_id)
