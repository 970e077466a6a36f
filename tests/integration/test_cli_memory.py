"""The installed `agent` command meeting odd text and failing databases (issue 11, items 2-4).

Real processes, real databases, a real OpenAI-compatible HTTP server for the replies. Every
failure is one line naming the part that failed (database, lock) and what to do, never
"The model call failed" when the model answered.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agent.memory.savers import sqlite_lock_dir
from tests.integration.test_cli_errors import AGENT, assert_one_line_error
from tests.integration.test_memory_support import unwritable
from tests.integration.test_model_errors import Script, server

pytestmark = pytest.mark.integration
__all__ = ["server"]  # the scripted model server fixture, shared with test_model_errors

REPLY = "Hello there."


def agent(*args: str, stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script (bytes in, text out) with the test's environment plus `env`."""
    done = subprocess.run(
        [AGENT, *args], input=stdin, capture_output=True, env={**os.environ, **env}, timeout=120
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def assert_no_model_blame(stderr: str) -> None:
    assert "model call failed" not in stderr.lower()
    assert "Traceback" not in stderr


def listed(*db: str) -> list[dict[str, object]]:
    """`agent threads list --json`, parsed."""
    result = agent(*db, "threads", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_a_nul_typed_into_ask_is_kept_and_the_thread_goes_on(url: str, server: Script) -> None:
    db = ("--db", url)
    first = agent(*db, "ask", "-", stdin=b"hello\x00world")
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert REPLY in first.stdout
    (thread,) = listed(*db)
    assert thread["title"] == "hello\x00world" and thread["messages"] == 2
    again = agent(*db, "ask", "-c", "and again")
    assert again.returncode == 0, again.stderr
    (thread,) = listed(*db)
    assert thread["messages"] == 4
    exported = json.loads(agent(*db, "threads", "export", str(thread["id"]), "-f", "json").stdout)
    assert exported["messages"][0]["content"] == "hello\x00world"


def test_a_read_only_database_file_is_a_database_error_after_the_shown_reply(
    tmp_path: Path, server: Script
) -> None:
    path = tmp_path / "agent.db"
    assert agent("--db", str(path), "ask", "first").returncode == 0
    with unwritable(path):
        result = agent("--db", str(path), "ask", "-c", "second")
    assert result.returncode == 1
    assert REPLY in result.stdout  # the model answered and the reply was shown
    assert_one_line_error(result.stderr)
    assert_no_model_blame(result.stderr)
    assert "The reply was shown but could not be saved" in result.stderr
    assert "read-only" in result.stderr and str(path) in result.stderr
    assert "AGENT_DB_URL" not in result.stderr  # it came from --db
    assert [t["messages"] for t in listed("--db", str(path))] == [2]


def test_an_unwritable_lock_directory_is_a_lock_error(tmp_path: Path, server: Script) -> None:
    path = tmp_path / "agent.db"
    assert agent("--db", str(path), "ask", "first").returncode == 0
    with unwritable(sqlite_lock_dir(path)):
        result = agent("--db", str(path), "ask", "second")
    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert_no_model_blame(result.stderr)
    assert "Cannot lock thread" in result.stderr and "agent.db-locks" in result.stderr
    assert "writable" in result.stderr
    assert result.stdout == ""  # refused before the model was asked
    assert len(server.requests) == 1


def test_an_empty_database_file_is_refused_not_reset(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    path.touch()
    result = agent("threads", "list", AGENT_DB_URL=str(path))
    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert "empty (0 bytes)" in result.stderr and str(path) in result.stderr
    assert path.stat().st_size == 0


def test_advice_names_agent_db_url_only_when_it_is_set() -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    from_env = agent("threads", "list", AGENT_DB_URL=unreachable)
    assert from_env.returncode == 1
    assert_one_line_error(from_env.stderr)
    assert "Check AGENT_DB_URL, or unset it" in from_env.stderr
    typed = agent("--db", unreachable, "threads", "list")
    assert typed.returncode == 1
    assert_one_line_error(typed.stderr)
    assert "AGENT_DB_URL" not in typed.stderr and "--db" in typed.stderr
