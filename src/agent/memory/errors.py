"""Memory's errors: each names the part that failed (database, lock, thread) and what to do.

- `DatabaseError`: the database failed (cannot be opened, is read-only, is not a database, a
  write failed); `ReplyNotSavedError` when that happened after the reply was streamed;
- `LockError`: a thread's turn lock (`ThreadBusyError`: another turn holds it;
  `LockUnavailableError`: the lock itself cannot be taken; `LockLostError`: it was lost);
- `ThreadNotFoundError`, `InvalidThreadIdError`: the thread asked for.
"""

from __future__ import annotations

from agent.errors import AgentError


def _one_line(detail: object) -> str:
    """An error's own words on one line, trimmed."""
    text = " ".join(str(detail).split())
    return text[:300] if text else type(detail).__name__


# --- database --------------------------------------------------------------------------------


class DatabaseError(AgentError, RuntimeError):
    """Base class: the database failed (not the model, not a lock).

    `where` is the database (password hidden), `detail` the driver's own words and `advice`
    what to do; the message joins them.
    """

    summary = "The database failed"

    def __init__(self, where: str, detail: object = "", advice: str = "") -> None:
        self.where = where
        self.detail = _one_line(detail) if detail != "" else ""
        self.advice = advice
        words = f" ({self.detail})" if self.detail else ""
        super().__init__(f"{self.summary}: {where}{words}. {advice}".strip())


class DatabaseURLError(DatabaseError, ValueError):
    """Raised for an AGENT_DB_URL (or url argument) that names no supported database."""

    summary = "Unsupported database URL"

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            repr(url),
            advice="Use a file path, sqlite:///relative.db, sqlite:////absolute.db, "
            "postgresql://user@host:5432/db, or 'memory'.",
        )


class DatabaseUnavailableError(DatabaseError, ConnectionError):
    """Raised when the configured database cannot be opened or reached."""

    summary = "Cannot open the database"


class DatabaseFileError(DatabaseError):
    """Raised for a file that is not a usable database (empty, or not SQLite)."""

    summary = "Not a usable database file"


class DatabaseReadOnlyError(DatabaseError):
    """Raised when a write fails because the database is read-only."""

    summary = "The database is read-only, so nothing can be saved"


class DatabaseWriteError(DatabaseError):
    """Raised when reading or writing the database fails during an operation."""

    summary = "The database failed"


class ReplyNotSavedError(DatabaseError):
    """Raised when the reply was streamed but the turn could not be saved.

    `reply` holds the text that was streamed; `cause` is the database error. The thread is
    left as it was before the message (nothing of the turn is kept).
    """

    def __init__(self, reply: str, cause: DatabaseError) -> None:
        self.reply = reply
        self.cause = cause
        AgentError.__init__(
            self,
            f"The reply was shown but could not be saved. {cause} "
            "The thread is as it was before this message: send it again once this is fixed.",
        )
        self.where, self.detail, self.advice = cause.where, cause.detail, cause.advice


def unsaved(error: Exception, reply: str) -> Exception:
    """The error to report for a failed turn: a database failure after a streamed reply says so.

    Args:
        error: What made the turn fail.
        reply: The text already streamed to the reader ('' if none).

    Returns:
        A `ReplyNotSavedError` for a database failure once text was streamed, else `error`.
    """
    if reply and isinstance(error, DatabaseError) and not isinstance(error, ReplyNotSavedError):
        return ReplyNotSavedError(reply, error)
    return error


# --- locks -----------------------------------------------------------------------------------


class LockError(AgentError, RuntimeError):
    """Base class: a thread's turn lock could not be taken or kept."""


class ThreadBusyError(LockError):
    """Raised when another process (or task) keeps a thread busy longer than the lock timeout."""

    def __init__(self, thread_id: str, waited: float) -> None:
        self.thread_id = thread_id
        self.waited = waited
        super().__init__(
            f"Thread {thread_id} is busy: another turn is running on it (waited {waited:.1f}s). "
            "Try again when it has finished."
        )


class LockUnavailableError(LockError):
    """Raised when the lock itself cannot be taken (lock directory, lock connection).

    `subject` is what needed it: a thread id for a turn, or "the schema setup".
    """

    def __init__(self, subject: str, what: str, error: object) -> None:
        self.subject = subject
        self.what = what
        self.detail = _one_line(error)
        fix = (
            "Make that directory writable (it sits beside the database file)."
            if "lock file" in what
            else "Check that the database server is reachable, then try again."
        )
        named = subject if subject.startswith("the ") else f"thread {subject}"
        super().__init__(
            f"Cannot lock {named}: the {what} failed ({self.detail}). Nothing was saved. {fix}"
        )


class LockLostError(LockError):
    """Raised when a turn ends and its lock turns out to have been lost while it ran."""

    def __init__(self, thread_id: str, where: str) -> None:
        self.thread_id = thread_id
        self.where = where
        super().__init__(
            f"Thread {thread_id} lost its lock during the turn: the lock connection to {where} "
            "dropped, and the server released the lock. The turn was saved, but another "
            "process may have written to this thread at the same time: check its history "
            "(agent threads show)."
        )


# --- threads ---------------------------------------------------------------------------------


class ThreadNotFoundError(AgentError, LookupError):
    """Raised for a thread id that has no saved conversation."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        super().__init__(
            f"No saved thread {thread_id!r}. `agent threads list` (or /threads in chat) "
            "lists the saved ones."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidThreadIdError(AgentError, ValueError):
    """Raised for a thread id the memory cannot keep for the thread's whole life."""

    def __init__(self, thread_id: object, problem: str) -> None:
        self.thread_id = thread_id
        super().__init__(
            f"Invalid thread id {thread_id!r}: {problem}. Use up to 128 printable characters "
            "(letters, digits, dots, @, spaces... anything but control characters)."
        )
