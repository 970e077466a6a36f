"""The archive: where evicted messages go, so the window can slide without losing the past.

A thread's entries live in the namespace `("transcript", label(thread_id))`: `label` turns any
thread id into a valid store label (plain ids such as uuids stay as they are). Before it, ids
were used raw, which worked for ids without a dot; entries such ids wrote then are still read
(and deleted) from that old namespace. Values go through `to_stored`, so a NUL in a message
survives PostgreSQL's JSONB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langgraph.store.base import BaseStore, GetOp, Item, PutOp

from agent.memory.namespaces import label
from agent.memory.text import from_stored, to_stored

TRANSCRIPT = "transcript"
PAGE = 500


class Archive(Protocol):
    """Append-only per-thread storage for messages that left the window."""

    def append(self, thread_id: str, start: int, messages: Sequence[BaseMessage]) -> None:
        """Store messages as entries start, start+1, ... (re-appending a range overwrites it)."""

    def read(self, thread_id: str, count: int | None = None, start: int = 0) -> list[BaseMessage]:
        """Return a thread's archived messages from `start`, oldest first (up to `count`)."""

    def delete(self, thread_id: str) -> None:
        """Forget a thread's archive."""


def entry_key(position: int) -> str:
    """A key that sorts in append order."""
    return f"{position:012d}"


def namespace(thread_id: str) -> tuple[str, str]:
    """The store namespace of one thread's transcript."""
    return (TRANSCRIPT, label(thread_id))


def legacy_namespace(thread_id: str) -> tuple[str, str] | None:
    """Where versions before `label()` kept this thread's transcript, if that differs and worked."""
    if thread_id == label(thread_id) or "." in thread_id or "\x00" in thread_id:
        return None
    return (TRANSCRIPT, thread_id)


def namespaces(thread_id: str) -> list[tuple[str, str]]:
    """Every namespace holding the thread's entries: the current one, then the legacy one."""
    legacy = legacy_namespace(thread_id)
    return [namespace(thread_id)] if legacy is None else [namespace(thread_id), legacy]


def _messages(items: Sequence[Item]) -> list[BaseMessage]:
    """Decode stored entries in key order."""
    found = sorted(items, key=lambda item: item.key)
    return messages_from_dict([from_stored(item.value) for item in found])


class StoreArchive:
    """An archive on any LangGraph BaseStore (InMemoryStore, SqliteStore, PostgresStore...).

    Entries are keyed by position, so reading the first `count` is a batch of key lookups (no
    search ordering involved) and a retried append overwrites instead of duplicating.
    """

    def __init__(self, store: BaseStore) -> None:
        self.store = store

    def append(self, thread_id: str, start: int, messages: Sequence[BaseMessage]) -> None:
        """Write one entry per message, in one batch (one transaction on SQL stores)."""
        ops = [
            PutOp(namespace(thread_id), entry_key(start + offset), to_stored(message_to_dict(m)))
            for offset, m in enumerate(messages)
        ]
        if ops:
            self.store.batch(ops)

    def read(self, thread_id: str, count: int | None = None, start: int = 0) -> list[BaseMessage]:
        """Entries start..count-1 (the thread state's `archived` is the count), else all of them.

        Lookups by key, a page at a time: positions are contiguous, so without a count reading
        stops at the first page with a missing entry.
        """
        items: list[Item] = []
        for first in range(start, count if count is not None else 2**62, PAGE):
            last = first + PAGE if count is None else min(first + PAGE, count)
            keys = [entry_key(k) for k in range(first, last)]
            page = self._page(thread_id, keys)
            items.extend(page)
            if len(page) < len(keys):
                break
        return _messages(items)

    def _page(self, thread_id: str, keys: list[str]) -> list[Item]:
        """The entries at `keys` that exist, looked up in the current then the legacy namespace."""
        found: dict[str, Item] = {}
        for space in namespaces(thread_id):
            missing = [key for key in keys if key not in found]
            if not missing:
                break
            results = self.store.batch([GetOp(space, key) for key in missing])
            found.update((item.key, item) for item in results if isinstance(item, Item))
        return [found[key] for key in keys if key in found]

    async def aread(
        self, thread_id: str, count: int | None = None, start: int = 0
    ) -> list[BaseMessage]:
        """Async `read`: the same code in a worker thread, so the two cannot drift.

        Native async stores (agent.memory.aio) serve it too: their sync methods run on their loop.
        """
        return await asyncio.to_thread(self.read, thread_id, count, start)

    def delete(self, thread_id: str) -> None:
        """Delete every entry of the thread (in either namespace), a page per batch."""
        for space in namespaces(thread_id):
            while batch := self.store.search(space, limit=PAGE):
                self.store.batch([PutOp(space, item.key, None) for item in batch])

    async def adelete(self, thread_id: str) -> None:
        """Async `delete`: the same code in a worker thread."""
        await asyncio.to_thread(self.delete, thread_id)
