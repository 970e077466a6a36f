"""Threads: list, get, read, export and delete saved conversations.

A small record per thread (namespace `("threads",)` in the store, key = thread id) is written at
each turn, so listing reads those records only, never the checkpoints. The record's message count
is recomputed from the saved state at the end of every turn, so a crash between saving a turn
and updating its record heals at the thread's next turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage

from agent.fences import with_fences_closed
from agent.memory.errors import ThreadNotFoundError
from agent.memory.savers import Memory
from agent.memory.text import from_stored, require_thread_id, to_stored

THREADS = ("threads",)
TITLE_LENGTH = 60
INTERRUPTED = "interrupted"
CUT, REPLY_TOKENS = "cut", "reply_tokens"  # a reply the length limit cut (PLAN decision 4)
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
ExportFormat = Literal["json", "markdown"]


@dataclass(frozen=True)
class ThreadInfo:
    """One saved thread as listed: id, title (its first user message), persona, size, times."""

    id: str
    title: str
    persona: str
    messages: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601)."""
        fields = asdict(self)
        fields["created_at"] = self.created_at.isoformat()
        fields["updated_at"] = self.updated_at.isoformat()
        return fields


def now() -> str:
    """The current UTC time as ISO 8601 (sorts as text)."""
    return datetime.now(UTC).isoformat()


def title_from(text: str) -> str:
    """A one-line title: the text's whitespace collapsed, cut at TITLE_LENGTH characters."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def info_from(thread_id: str, record: Mapping[str, Any]) -> ThreadInfo:
    """A ThreadInfo from a stored record."""
    return ThreadInfo(
        id=thread_id,
        title=str(record.get("title", "")),
        persona=str(record.get("persona", "")),
        messages=int(record.get("messages", 0)),
        created_at=datetime.fromisoformat(record["created_at"]),
        updated_at=datetime.fromisoformat(record["updated_at"]),
    )


def new_record(first_text: str, persona: str | None, stamp: str) -> dict[str, Any]:
    """The record of a thread whose first turn is starting."""
    return {
        "title": title_from(first_text),
        "persona": persona or "",
        "messages": 0,
        "created_at": stamp,
        "updated_at": stamp,
    }


def updated_record(
    record: Mapping[str, Any], values: Mapping[str, Any], stamp: str
) -> dict[str, Any]:
    """The record after a turn: count and persona from the saved state, a new update time."""
    window = values.get("messages", [])
    return {
        **record,
        "persona": values.get("persona") or record.get("persona", ""),
        "messages": int(values.get("archived", 0)) + len(window),
        "updated_at": stamp,
    }


def is_empty(values: Mapping[str, Any]) -> bool:
    """Whether a thread's state holds no conversation (e.g. its first turn was rolled back)."""
    return not values.get("messages") and not values.get("archived")


def merge_transcript(
    archived: Sequence[BaseMessage], window: Sequence[BaseMessage]
) -> list[BaseMessage]:
    """Archived messages then the window, in order, each message once (by id)."""
    seen: set[str] = set()
    merged: list[BaseMessage] = []
    for message in [*archived, *window]:
        if message.id and message.id in seen:
            continue
        if message.id:
            seen.add(message.id)
        merged.append(message)
    return merged


# --- per-turn bookkeeping (called by Chatbot while it holds the thread's lock) ----------------


def begin_turn(memory: Memory, thread_id: str, text: str, persona: str | None) -> dict[str, Any]:
    """The thread's record, or a new one titled by this message (saved by `end_turn`).

    Nothing is written before the model call, so a first turn's time to first token pays for
    no database commit; a turn that dies before `end_turn` saved nothing either (durability exit).
    """
    record = read_record(memory, thread_id)
    return record if record is not None else new_record(text, persona, now())


def end_turn(
    memory: Memory, thread_id: str, record: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Save the record (count from the saved state) if the turn changed it; prune when due.

    A turn that saved nothing (rolled back, or the database refused it) writes nothing either:
    the stored record still matches the state, and a read-only database is not written twice.
    """
    if is_empty(values):
        if record.get("messages"):  # a stored record (new ones start at 0) of a thread now empty
            memory.store.delete(THREADS, thread_id)
        return
    updated = updated_record(record, values, now())
    if (updated["messages"], updated["persona"]) == (record.get("messages"), record.get("persona")):
        return
    memory.store.put(THREADS, thread_id, to_stored(updated))
    if memory.prune_due(updated["messages"]):
        memory.prune(thread_id)


# --- reading ----------------------------------------------------------------------------------


def read_record(memory: Memory, thread_id: str) -> dict[str, Any] | None:
    """The thread's stored record, or None."""
    item = memory.store.get(THREADS, thread_id)
    return None if item is None else from_stored(item.value)


def saved_values(memory: Memory, thread_id: str) -> dict[str, Any] | None:
    """The thread's latest saved state (one checkpoint read), or None if it has none."""
    saved = memory.checkpointer.get_tuple({"configurable": {"thread_id": thread_id}})
    return None if saved is None else dict(saved.checkpoint["channel_values"])


def transcript(memory: Memory, thread_id: str) -> list[BaseMessage]:
    """The whole conversation: archived messages then the window, in order, no duplicates."""
    require_thread_id(thread_id)
    values = saved_values(memory, thread_id) or {}
    archived = memory.archive.read(thread_id, int(values.get("archived", 0)))
    return merge_transcript(archived, values.get("messages", []))


def list_threads(memory: Memory, limit: int | None = None) -> list[ThreadInfo]:
    """Saved threads, most recently updated first (reads the small records only)."""
    records: dict[str, Mapping[str, Any]] = {}
    offset, page = 0, 500
    while batch := memory.store.search(THREADS, limit=page, offset=offset):
        records.update((item.key, from_stored(item.value)) for item in batch)
        offset += page
    infos = [_checked(memory, thread_id, record) for thread_id, record in records.items()]
    listed = sorted((i for i in infos if i is not None), key=lambda i: i.updated_at, reverse=True)
    return listed if limit is None else listed[:limit]


def _checked(memory: Memory, thread_id: str, record: Mapping[str, Any]) -> ThreadInfo | None:
    """A record's info; an empty-looking record (first turn cut short) is checked against state."""
    if int(record.get("messages", 0)) > 0:
        return info_from(thread_id, record)
    values = saved_values(memory, thread_id)
    if not values or not values.get("messages"):
        return None
    return info_from(thread_id, updated_record(record, values, record["updated_at"]))


def get_thread(memory: Memory, thread_id: str) -> ThreadInfo:
    """One thread's info; ThreadNotFoundError if it has no saved conversation."""
    record = read_record(memory, require_thread_id(thread_id))
    info = _checked(memory, thread_id, record) if record is not None else None
    if info is None:
        values = saved_values(memory, thread_id)
        if not values or not values.get("messages"):
            raise ThreadNotFoundError(thread_id)
        messages = transcript(memory, thread_id)
        first = next((m for m in messages if isinstance(m, HumanMessage)), None)
        stamp = now()
        record = new_record(str(first.text) if first else "", values.get("persona"), stamp)
        info = info_from(thread_id, updated_record(record, values, stamp))
    return info


def delete_thread(memory: Memory, thread_id: str) -> bool:
    """Delete a thread's checkpoints, transcript and record; False if there was nothing.

    Holds the thread's lock, so a turn in progress finishes first. The record goes last: a
    deletion cut short still lists the thread, and deleting again completes it.
    """
    with memory.thread_lock(require_thread_id(thread_id)):
        existed = (
            memory.store.get(THREADS, thread_id) is not None
            or saved_values(memory, thread_id) is not None
        )
        memory.checkpointer.delete_thread(thread_id)
        memory.archive.delete(thread_id)
        memory.store.delete(THREADS, thread_id)
    return existed


# --- export -----------------------------------------------------------------------------------


def message_entry(message: BaseMessage) -> dict[str, Any]:
    """A message as exported: role, text, and whether the reply was stopped or cut short."""
    entry: dict[str, Any] = {"role": ROLES.get(message.type, message.type), "content": message.text}
    meta = message.response_metadata
    if meta.get(INTERRUPTED):
        entry["interrupted"] = True
    if meta.get(CUT):
        entry[CUT] = True
        if isinstance(meta.get(REPLY_TOKENS), int):
            entry[REPLY_TOKENS] = meta[REPLY_TOKENS]
    return entry


def entry_note(entry: Mapping[str, Any]) -> str:
    """The Markdown note after a speaker for a reply that is incomplete."""
    if entry.get("interrupted"):
        return " _(interrupted)_"
    if entry.get(CUT):
        tokens = entry.get(REPLY_TOKENS)
        return f" _(cut at {tokens} tokens)_" if tokens else " _(cut at the length limit)_"
    return ""


def export_json(info: ThreadInfo, messages: Sequence[BaseMessage], summary: str = "") -> str:
    """The thread as JSON: its info, its running summary and its messages in order."""
    payload = {
        "thread": info.to_dict(),
        "summary": summary,
        "messages": [message_entry(m) for m in messages],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def export_markdown(info: ThreadInfo, messages: Sequence[BaseMessage], summary: str = "") -> str:
    """The thread as Markdown: a heading, its details, its summary, each message by speaker."""
    lines = [
        f"# {info.title or 'Untitled conversation'}",
        "",
        f"- thread: `{info.id}`",
        f"- persona: {info.persona}",
        f"- messages: {info.messages}",
        f"- created: {info.created_at.isoformat(timespec='seconds')}",
        f"- updated: {info.updated_at.isoformat(timespec='seconds')}",
    ]
    if summary:
        lines += ["", "## Summary of what the window evicted", "", summary]
    for message in messages:
        entry = message_entry(message)
        note = entry_note(entry)
        text = with_fences_closed(str(entry["content"]))  # a reply stopped inside a code block
        lines += ["", f"**{entry['role'].capitalize()}:**{note}", "", text]
    return "\n".join(lines) + "\n"


def export_thread(memory: Memory, thread_id: str, format: ExportFormat = "json") -> str:
    """The whole thread (transcript, not just the window) as JSON or Markdown."""
    info = get_thread(memory, thread_id)
    messages = transcript(memory, thread_id)
    summary = str((saved_values(memory, thread_id) or {}).get("summary") or "")
    if format == "json":
        return export_json(info, messages, summary)
    if format == "markdown":
        return export_markdown(info, messages, summary)
    raise ValueError(f"Unknown export format {format!r}: use 'json' or 'markdown'.")
