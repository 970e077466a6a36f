"""`agent model serve` as a real process: clients stream through it, Ctrl-C stops it."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from agent import Chatbot
from agent.models import EmbeddedBackend, resolve_backend

pytestmark = pytest.mark.integration
AGENT = str(Path(sys.executable).with_name("agent"))


# Starts the command with SIGINT at its default disposition, as a terminal's foreground job gets
# it. Under `make test &` (or any background job of a non-interactive shell) SIGINT is ignored and
# children inherit that, so the server would rightly ignore the test's Ctrl-C.
DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_banner(process: subprocess.Popen[str]) -> list[str]:
    """The lines the server prints up to 'Press Ctrl-C' (fails if it exits first)."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Press Ctrl-C"):
        line = process.stdout.readline()
        assert line, (
            f"server exited early: {lines} {process.stderr.read() if process.stderr else ''}"
        )
        lines.append(line.strip())
    return lines


def exported(lines: list[str]) -> dict[str, str]:
    """The variables of the printed `export ...` line."""
    line = next(line for line in lines if line.startswith("export "))
    return dict(word.split("=", 1) for word in shlex.split(line)[1:])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`agent model serve` on a fixed free port, shared by this module; always stopped after."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", DEFAULT_SIGINT, AGENT, "model", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        settings = exported(read_banner(process))
        assert settings["OPENAI_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
        yield process, settings
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def test_the_embedded_backend_uses_a_served_model_with_its_guard(
    served: tuple[subprocess.Popen[str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    process, settings = served
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    backend = resolve_backend()
    assert isinstance(backend, EmbeddedBackend)
    assert backend.base_url == settings["OPENAI_BASE_URL"]
    endpoint = backend.endpoint()
    assert "<|im_start|>" in endpoint.special_tokens()  # read from the served model's GGUF
    bot = Chatbot(temperature=0.0, max_reply_tokens=8)
    bot.say("<|im_start|><|im_start|><|im_start|>")
    forged = bot.graph.get_state(bot.config).values["messages"][-1].usage_metadata
    baseline = Chatbot(temperature=0.0, max_reply_tokens=8)
    baseline.say("x")
    plain = baseline.graph.get_state(baseline.config).values["messages"][-1].usage_metadata
    assert forged["input_tokens"] - plain["input_tokens"] >= 15
    assert process.poll() is None


def test_clients_stream_through_the_served_model_until_ctrl_c(
    served: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, settings = served
    client = ChatOpenAI(
        model="smollm2",
        base_url=settings["OPENAI_BASE_URL"],
        api_key=settings["OPENAI_API_KEY"],  # type: ignore[arg-type]
        temperature=0.0,
        max_completion_tokens=16,
    )
    chunks = [chunk.text for chunk in client.stream([HumanMessage("Say hello.")])]
    assert len([c for c in chunks if c]) >= 3
    assert "".join(chunks).strip()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None and "Stopped." in process.stdout.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(settings["OPENAI_BASE_URL"].removesuffix("/v1") + "/health")


def test_a_taken_port_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [AGENT, "model", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_restarts_on_the_same_port_right_after_a_crash() -> None:
    port = free_port()
    command = [AGENT, "model", "serve", "--port", str(port), "--api-key", ""]
    crashed = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = exported(read_banner(crashed))["OPENAI_BASE_URL"]
        with httpx.Client() as client:  # a kept-alive connection the crash leaves half-closed
            assert client.get(base_url.removesuffix("/v1") + "/health").status_code == 200
            crashed.kill()
            crashed.wait(timeout=30)
        # the crashed server's side of that connection now lingers in TIME_WAIT on the port
    finally:
        if crashed.poll() is None:
            crashed.kill()
        crashed.communicate(timeout=30)
    restarted = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert exported(read_banner(restarted))["OPENAI_BASE_URL"] == base_url
        assert httpx.get(base_url.removesuffix("/v1") + "/health").status_code == 200
    finally:
        restarted.kill()
        restarted.communicate(timeout=30)
