"""The `agent` command starts without LangChain & co.: help and --version must not wait for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent import __version__

HEAVY = (
    "langchain_core",
    "langchain_openai",
    "langgraph",
    "psycopg",
    "xllamacpp",
    "torch",
    "sentence_transformers",
)

# Runs each command line in-process (no exit), then reports which heavy packages got imported.
PROBE = """
import json, sys
from agent.cli import cli
for args in json.loads(sys.argv[1]):
    cli.main(args, prog_name="agent", standalone_mode=False)
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(heavy))))
"""


def heavy_modules_after(*command_lines: list[str]) -> list[str]:
    """The heavy packages a fresh interpreter holds after importing the CLI and running these."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(command_lines)), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_cli_loads_no_heavy_package() -> None:
    assert heavy_modules_after() == []


def test_help_and_version_load_no_heavy_package() -> None:
    assert heavy_modules_after(["--version"], ["-h"], ["chat", "-h"], ["ask", "-h"]) == []


def test_the_probe_would_see_a_heavy_import() -> None:
    """Guard against a probe that cannot fail: listing saved threads opens LangGraph's savers."""
    assert "langchain_core" in heavy_modules_after(["threads", "list"])


def installed_agent() -> Path:
    """The console script next to this interpreter (the virtualenv's `agent`)."""
    script = Path(sys.executable).parent / "agent"
    if not script.exists():
        pytest.skip("the `agent` console script is not installed next to this Python")
    return script


def run_agent(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `agent` command."""
    return subprocess.run(
        [str(installed_agent()), *args], capture_output=True, text=True, timeout=60
    )


def test_version_from_the_installed_script() -> None:
    result = run_agent("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"agent, version {__version__}"


def test_help_from_the_installed_script_lists_the_commands() -> None:
    result = run_agent("-h")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: agent [OPTIONS] COMMAND [ARGS]...")
    for command in ("chat", "ask", "threads", "personas", "db", "model"):
        assert f"\n  {command} " in result.stdout, command
