"""Memory's errors: each says what went wrong with the database or thread, and what to do."""

from __future__ import annotations

from agent.errors import AgentError


class DatabaseURLError(AgentError, ValueError):
    """Raised for an AGENT_DB_URL (or url argument) that names no supported database."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"Unsupported database URL {url!r}. Use a file path, sqlite:///relative.db, "
            "sqlite:////absolute.db, postgresql://user@host:5432/db, or 'memory'."
        )


class DatabaseUnavailableError(AgentError, ConnectionError):
    """Raised when the configured database cannot be opened or reached."""

    def __init__(self, where: str, detail: str) -> None:
        self.where = where
        self.detail = " ".join(detail.split())
        super().__init__(
            f"Cannot open the database at {where} ({self.detail}). Check AGENT_DB_URL "
            "(unset it to use the local SQLite file)."
        )


class ThreadBusyError(AgentError, RuntimeError):
    """Raised when another process (or task) keeps a thread busy longer than the lock timeout."""

    def __init__(self, thread_id: str, waited: float) -> None:
        self.thread_id = thread_id
        self.waited = waited
        super().__init__(
            f"Thread {thread_id} is busy: another turn is running on it (waited {waited:.1f}s). "
            "Try again when it has finished."
        )


class ThreadNotFoundError(AgentError, LookupError):
    """Raised for a thread id that has no saved conversation."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(f"No saved thread {thread_id!r}. `agent threads` lists the saved ones.")

    def __str__(self) -> str:
        return str(self.args[0])
