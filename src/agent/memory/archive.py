"""The archive: where evicted messages go, so the window can slide without losing the past."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from langchain_core.messages import BaseMessage, messages_from_dict, message_to_dict
from langgraph.store.base import BaseStore

TRANSCRIPT = "transcript"


class Archive(Protocol):
    """Append-only per-thread storage for messages that left the window."""

    def append(self, thread_id: str, start: int, messages: Sequence[BaseMessage]) -> None:
        """Store messages as entries start, start+1, ... (re-appending the same range is a no-op)."""

    def read(self, thread_id: str) -> list[BaseMessage]:
        """Return a thread's archived messages, oldest first."""

    def delete(self, thread_id: str) -> None:
        """Forget a thread's archive."""


def entry_key(position: int) -> str:
    """A key that sorts in append order."""
    return f"{position:012d}"


class StoreArchive:
    """An archive on any LangGraph BaseStore (InMemoryStore, SqliteStore, PostgresStore...)."""

    def __init__(self, store: BaseStore) -> None:
        self.store = store

    def append(self, thread_id: str, start: int, messages: Sequence[BaseMessage]) -> None:
        """Write one item per message; keys are positions, so a retried write cannot duplicate."""
        for offset, message in enumerate(messages):
            self.store.put(
                (TRANSCRIPT, thread_id), entry_key(start + offset), message_to_dict(message)
            )

    def read(self, thread_id: str) -> list[BaseMessage]:
        """Page through the thread's items and return them in append order."""
        items, offset, page = [], 0, 500
        while True:
            batch = self.store.search((TRANSCRIPT, thread_id), limit=page, offset=offset)
            items.extend(batch)
            if len(batch) < page:
                break
            offset += page
        items.sort(key=lambda item: item.key)
        return messages_from_dict([item.value for item in items])

    def delete(self, thread_id: str) -> None:
        """Delete every archived item of the thread."""
        for item in self.store.search((TRANSCRIPT, thread_id), limit=1_000_000):
            self.store.delete((TRANSCRIPT, thread_id), item.key)
