"""`make serve` (python -m agent.server.dev): quiet while idle, reloads on code edits, offline.

The in-memory server rewrites `.langgraph_api/` every ~10 s. When the reloader watched the whole
working directory, each rewrite logged "3 changes detected" forever; it watches code only now.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.server.dev import ServerProcess, free_port, start_server
from tests.integration.server_harness import server_config, server_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WAIT = 180.0  # generous: a busy 2-core machine; the test waits for events, never for time
FLUSHED = ".langgraph_api/.langgraph_ops.pckl"
DETECTED = re.compile(r"\d+ changes? detected")


def wait_for(ready: Callable[[], bool], what: str, server: ServerProcess) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{server.log_tail(80)}")


def mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory: the real langgraph.json and a code directory to edit."""
    server_config(tmp_path)
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "edit_me.py").write_text('"""Edited by the test."""\n')
    return tmp_path


@pytest.fixture
def served(project: Path) -> Iterator[ServerProcess]:
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "agent.server.dev", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        log=project / "serve.log",
        env={**server_env(project), "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=project,
    )
    try:
        yield server
    finally:
        server.stop()


def test_idle_server_logs_nothing_and_reloads_on_a_code_edit(
    project: Path, served: ServerProcess
) -> None:
    flushed = project / FLUSHED
    before = mtime(flushed)
    wait_for(lambda: mtime(flushed) > before, "an idle persistence flush", served)

    (project / "graphs" / "edit_me.py").write_text('"""Edited by the test, twice."""\n')
    wait_for(lambda: "Reloading" in served.log.read_text(), "the reload", served)
    served.wait_ready()

    log = served.log.read_text()
    # Events are reported in order: had the flush been watched, it would show before the edit.
    assert DETECTED.findall(log) == ["1 change detected"], log
    assert "edit_me.py" in log
    assert "Studio" not in log and "smith.langchain" not in log
    assert "/docs" in log  # the local API docs are still announced
