"""Where memory lives: AGENT_DB_URL (or an explicit url) parsed into a backend and a target.

- unset or empty: a SQLite file `agent.db` in the data directory ($AGENT_HOME, else the
  platform's user data directory);
- a path, `sqlite:///relative.db` or `sqlite:////absolute.db`: that SQLite file;
- `postgresql://...` (or `postgres://...`): PostgreSQL;
- `memory` (or `:memory:`): in-process memory, gone when the process exits.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from agent.memory.errors import DatabaseURLError

APP_NAME = "agent"
DB_FILE = "agent.db"
Kind = Literal["memory", "sqlite", "postgres"]
Origin = Literal["given", "env", "default"]
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: not a drive letter


def data_dir() -> Path:
    """The user's data directory: $AGENT_HOME, else the platform's (e.g. ~/.local/share/agent)."""
    override = os.environ.get("AGENT_HOME", "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_sqlite_path() -> Path:
    """The SQLite file used when AGENT_DB_URL is unset."""
    return data_dir() / DB_FILE


@dataclass(frozen=True)
class Location:
    """A parsed database location: the backend, its file path or connection URL, and its origin.

    `origin` says where the location came from (an argument or --db, AGENT_DB_URL, or the
    default file), so error messages advise the right fix.
    """

    kind: Kind
    target: str
    origin: Origin = field(default="given", compare=False)

    def describe(self) -> str:
        """The location for messages and logs, with any password hidden."""
        if self.kind == "postgres":
            return redact(self.target)
        if self.kind == "sqlite":
            return f"sqlite:{self.target}"
        return "memory"

    def advice(self) -> str:
        """What to check when this database fails, naming only what the user actually set."""
        if self.origin == "env":
            return "Check AGENT_DB_URL, or unset it to use the local SQLite file."
        if self.origin == "default":
            return "Or set AGENT_DB_URL (or --db) to use another database."
        return "Check the database location given (--db or the url argument)."


def redact(url: str) -> str:
    """Hide the password of a connection URL."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def configured_url(url: str | None = None) -> tuple[str, Origin]:
    """The url given, else $AGENT_DB_URL, else '' (the default SQLite file), and its origin."""
    if url is not None:
        return url.strip(), "given"
    value = os.environ.get("AGENT_DB_URL", "").strip()
    return value, "env" if value else "default"


def parse_location(url: str | None = None) -> Location:
    """Turn a database URL (or AGENT_DB_URL) into a Location; reject unknown schemes clearly."""
    value, origin = configured_url(url)
    if not value:
        return Location("sqlite", str(default_sqlite_path()), "default")
    if value.lower() in ("memory", ":memory:", "sqlite://", "sqlite:///:memory:"):
        return Location("memory", "memory", origin)
    match = SCHEME.match(value)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("postgresql", "postgres") and value[len(scheme) :].startswith("://"):
        return Location("postgres", value, origin)
    if scheme == "sqlite" and value[len(scheme) :].startswith(":///") and len(value) > 10:
        return Location("sqlite", str(Path(value[10:]).expanduser()), origin)
    if scheme:
        raise DatabaseURLError(value)
    return Location("sqlite", str(Path(value).expanduser()), origin)
