"""The installed `agent` command as a user runs it: real process, real model client, real errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.memory import list_threads, open_memory

pytestmark = pytest.mark.integration

AGENT = str(Path(sys.executable).with_name("agent"))


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def agent(*args: str, input: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script with the test's environment plus `env`."""
    return subprocess.run(
        [AGENT, *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def assert_one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")


def test_unreachable_model_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = agent("ask", "Hello?", OPENAI_BASE_URL=url)

    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert "cannot be reached" in result.stderr and url in result.stderr
    assert result.stdout == ""
    with open_memory() as memory:
        assert list_threads(memory) == []  # the failed turn left nothing behind


def test_unreachable_model_in_chat_reports_and_keeps_chatting() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = agent("chat", input="Hello?\n/history\n/quit\n", OPENAI_BASE_URL=url)

    assert result.returncode == 0
    assert_one_line_error(result.stderr)
    assert "cannot be reached" in result.stderr
    assert "No messages yet." in result.stdout
    assert "\x1b[" not in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("chat", "-p", "nope"), 2, "Available personas: assistant"),
        (("ask", "-t", "nope", "hi"), 1, "No saved thread 'nope'"),
        (("ask", ""), 2, "The question is empty"),
        (("chat", "--nope"), 2, "No such option"),
        (("threads", "show", "nope"), 1, "No saved thread 'nope'"),
    ],
)
def test_user_errors_are_one_line_with_the_right_exit_code(
    args: tuple[str, ...], code: int, words: str
) -> None:
    result = agent(*args)

    assert result.returncode == code
    assert_one_line_error(result.stderr)
    assert words in result.stderr


def test_version_and_help_from_the_installed_script() -> None:
    assert agent("--version").stdout.startswith("agent, version ")
    assert "Examples:" in agent("-h").stdout


@pytest.mark.parametrize(("command", "input"), [(("ask", "hi"), ""), (("chat",), "hi\n/quit\n")])
def test_a_model_name_the_embedded_model_cannot_serve_is_refused_before_any_message(
    command: tuple[str, ...], input: str
) -> None:
    result = agent(command[0], "-m", "llama3.2", *command[1:], input=input)

    assert result.returncode == 1
    assert_one_line_error(result.stderr)
    assert "serves only 'smollm2'" in result.stderr and "'llama3.2'" in result.stderr
    assert "assistant>" not in result.stdout  # the chat never asked for a message
    with open_memory() as memory:
        assert list_threads(memory) == []


def test_the_embedded_models_own_name_is_accepted() -> None:
    result = agent("ask", "-m", "smollm2", "Say hi", AGENT_MAX_REPLY_TOKENS="8")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
