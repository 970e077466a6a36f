"""Shared integration fixtures: one embedded llama.cpp server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.models.embedded import EmbeddedServer, shared_server, stop_shared_server
from tests.integration.test_memory_support import postgres_database

# Short, deterministic replies keep the real-model tests fast on 2 cores.
REPLY_TOKENS = 24


@pytest.fixture(scope="session")
def _embedded_session() -> Iterator[None]:
    """Stop the process's embedded server (if any test started it) when the session ends."""
    yield
    stop_shared_server()


@pytest.fixture
def embedded_server(_embedded_session: None) -> EmbeddedServer:
    """The process's embedded server (started once; a test that stops it gets a fresh one)."""
    return shared_server()


@pytest.fixture
def short_replies() -> dict[str, object]:
    """Chatbot settings for quick, repeatable answers from the real model."""
    return {"temperature": 0.0, "max_reply_tokens": REPLY_TOKENS}


# --- databases: every memory behaviour runs on each backend from the same test ---------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each durable kind: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "memory.db")
        return
    with postgres_database() as pg_url:
        yield pg_url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of every kind, in-process memory included."""
    if request.param == "memory":
        yield "memory"
    elif request.param == "sqlite":
        yield str(tmp_path / "memory.db")
    else:
        with postgres_database() as pg_url:
            yield pg_url
