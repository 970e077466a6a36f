"""The archive: where evicted messages go, so the window can slide without losing the past."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langgraph.store.base import BaseStore, GetOp, Item, PutOp

TRANSCRIPT = "transcript"
PAGE = 500


class Archive(Protocol):
    """Append-only per-thread storage for messages that left the window."""

    def append(self, thread_id: str, start: int, messages: Sequence[BaseMessage]) -> None:
        """Store messages as entries start, start+1, ... (re-appending a range overwrites it)."""

    def read(self, thread_id: str, count: int | None = None) -> list[BaseMessage]:
        """Return a thread's archived messages, oldest first (the first `count` if given)."""

    def delete(self, thread_id: str) -> None:
        """Forget a thread's archive."""


def entry_key(position: int) -> str:
    """A key that sorts in append order."""
    return f"{position:012d}"


def namespace(thread_id: str) -> tuple[str, str]:
    """The store namespace of one thread's transcript."""
    return (TRANSCRIPT, thread_id)


def _messages(items: Sequence[Item]) -> list[BaseMessage]:
    """Decode stored entries in key order."""
    found = sorted(items, key=lambda item: item.key)
    return messages_from_dict([item.value for item in found])


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
            PutOp(namespace(thread_id), entry_key(start + offset), message_to_dict(message))
            for offset, message in enumerate(messages)
        ]
        if ops:
            self.store.batch(ops)

    def read(self, thread_id: str, count: int | None = None) -> list[BaseMessage]:
        """Entries 0..count-1 (the thread state's `archived` is the count), else all of them.

        Lookups by key, a page at a time: positions are contiguous, so without a count reading
        stops at the first page with a missing entry.
        """
        items: list[Item] = []
        for first in range(0, count if count is not None else 2**62, PAGE):
            last = first + PAGE if count is None else min(first + PAGE, count)
            ops = [GetOp(namespace(thread_id), entry_key(k)) for k in range(first, last)]
            page = [item for item in self.store.batch(ops) if isinstance(item, Item)]
            items.extend(page)
            if len(page) < len(ops):
                break
        return _messages(items)

    async def aread(self, thread_id: str, count: int | None = None) -> list[BaseMessage]:
        """Async `read`: the same code in a worker thread, so the two cannot drift.

        Native async stores (agent.memory.aio) serve it too: their sync methods run on their loop.
        """
        return await asyncio.to_thread(self.read, thread_id, count)

    def delete(self, thread_id: str) -> None:
        """Delete every entry of the thread, a page per batch."""
        while batch := self.store.search(namespace(thread_id), limit=PAGE):
            self.store.batch([PutOp(namespace(thread_id), item.key, None) for item in batch])

    async def adelete(self, thread_id: str) -> None:
        """Async `delete`: the same code in a worker thread."""
        await asyncio.to_thread(self.delete, thread_id)
