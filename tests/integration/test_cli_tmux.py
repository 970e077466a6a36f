"""`agent chat` in a real terminal (tmux) against the real embedded model.

Two turns, Ctrl-C in the middle of the second reply, /new, /switch back, /quit; the screen is read
with capture-pane and the thread with the Python API afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.chatbot import INTERRUPTED
from agent.memory import list_threads, open_memory, transcript

TMUX = shutil.which("tmux")
AGENT = str(Path(sys.executable).with_name("agent"))
WAIT = 120.0  # generous: the model shares 2 cores with the rest of the suite

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it on CI)"),
]


class Screen:
    """One tmux server (own socket) running one command in a 100x30 pane."""

    def __init__(self, env: dict[str, str], socket: Path) -> None:
        self.socket = socket
        self.env = env

    def tmux(self, *args: str) -> str:
        command = [str(TMUX), "-S", str(self.socket), "-f", "/dev/null", *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "chat", "-x", "100", "-y", "30", command)
        self.tmux("set-option", "-t", "chat", "remain-on-exit", "on")

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "chat", *keys)

    def text(self) -> str:
        """Everything the pane shows, scrollback included, wrapped lines joined."""
        return self.tmux("capture-pane", "-t", "chat", "-p", "-J", "-S", "-500")

    def wait_for(self, ready: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            screen = self.text()
            if ready(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text()}")

    def exit_status(self) -> str:
        """The exit status the shell printed after the command ended."""
        screen = self.wait_for(lambda s: "EXIT=" in s, "the command to exit")
        return screen.split("EXIT=", 1)[1].split()[0]

    def kill(self) -> None:
        subprocess.run(
            [str(TMUX), "-S", str(self.socket), "kill-server"], env=self.env, capture_output=True
        )
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[Screen]:
    env = {  # AGENT_HOME is the test's own (conftest), so the Python API reads the same data
        **os.environ,
        "AGENT_TEMPERATURE": "0",
        "AGENT_MAX_REPLY_TOKENS": "400",
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    session = Screen(env, tmp_path / "tmux.sock")
    try:
        yield session
    finally:
        session.kill()


def prompts(screen: str) -> int:
    return len(re.findall(r"^assistant>( |$)", screen, flags=re.MULTILINE))


def reply_started(screen: str) -> bool:
    """The second reply is streaming: its first words are on screen, the spinner is gone."""
    before, marker, after = screen.partition("assistant> Write a long story about a dragon.")
    started = "thinking" not in after and re.search(r"[A-Za-z]{2,}", after) is not None
    return bool(marker) and started


def test_chat_in_a_real_terminal(screen: Screen) -> None:
    screen.start(f"{AGENT} chat; echo EXIT=$?")
    start = screen.wait_for(lambda s: prompts(s) == 1, "the first prompt")
    header = re.search(r"persona assistant · thread ([0-9a-f]{8}) · embedded llama\.cpp", start)
    assert header, start
    first_short_id = header.group(1)

    screen.send("What is the capital of France?", "Enter")
    screen.wait_for(lambda s: prompts(s) == 2, "the first reply")

    screen.send("Write a long story about a dragon.", "Enter")
    screen.wait_for(reply_started, "the second reply to start")
    screen.send("C-c")
    stopped = screen.wait_for(lambda s: prompts(s) == 3, "the prompt after Ctrl-C")
    assert "[interrupted]" in stopped, stopped

    screen.send("/new", "Enter")
    fresh = screen.wait_for(lambda s: "New thread" in s and prompts(s) == 4, "/new")
    new_id = re.findall(r"New thread · persona assistant · thread ([0-9a-f]{8})", fresh)
    assert new_id and new_id[0] != first_short_id

    screen.send(f"/switch {first_short_id}", "Enter")
    switched = screen.wait_for(lambda s: prompts(s) == 5, "/switch")
    assert f"Switched · persona assistant · thread {first_short_id}" in switched

    screen.send("/history", "Enter")
    history = screen.wait_for(lambda s: prompts(s) == 6, "/history")
    assert "you: What is the capital of France?" in history
    assert "you: Write a long story about a dragon." in history

    screen.send("/quit", "Enter")
    assert screen.exit_status() == "0"

    with open_memory() as memory:
        threads = list_threads(memory)
        assert [t.id[:8] for t in threads] == [first_short_id]  # the empty /new thread is not saved
        messages = transcript(memory, threads[0].id)
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[0].text == "What is the capital of France?"
    assert not messages[1].response_metadata.get(INTERRUPTED)
    assert messages[3].response_metadata.get(INTERRUPTED) is True
    partial = messages[3].text.strip()
    assert partial
    first_words = " ".join(partial.split()[:3])
    assert first_words in " ".join(history.split())  # what was saved is what the screen showed
    # Before /history, each reply is in the scrollback once: the live region redrew it in
    # place many times, and a real terminal must show none of those redraws (issue 11.11).
    for reply in (messages[1].text, partial):
        plain = " ".join(re.sub(r"[*_`#>]", "", reply).split())
        opening = " ".join(plain.split()[:4])  # as often on screen as in the reply itself
        assert " ".join(stopped.split()).count(opening) == plain.count(opening), stopped

    # Resuming shows where the conversation was: its last exchange, the reply marked.
    screen.tmux("kill-session", "-t", "chat")
    screen.start(f"{AGENT} chat -c; echo EXIT=$?")
    resumed = screen.wait_for(lambda s: prompts(s) == 1, "the resumed chat's prompt")
    assert "Last exchange (4 messages; /history shows them all):" in resumed
    assert "you: Write a long story about a dragon." in resumed
    assert "[interrupted]" in resumed.split("you: Write a long story about a dragon.", 1)[1]
    screen.send("/quit", "Enter")
    assert screen.exit_status() == "0"


def test_a_cut_reply_is_marked_and_continues_in_a_real_terminal(screen: Screen) -> None:
    screen.env["AGENT_MAX_REPLY_TOKENS"] = "8"  # every reply hits the limit
    screen.start(f"{AGENT} chat; echo EXIT=$?")
    screen.wait_for(lambda s: prompts(s) == 1, "the first prompt")

    screen.send("Write a long story about a dragon.", "Enter")
    first = screen.wait_for(lambda s: prompts(s) == 2, "the cut reply")
    assert "[cut at 8 tokens]" in first
    screen.send("/continue", "Enter")
    more = screen.wait_for(lambda s: prompts(s) == 3, "the continuation")
    assert more.count("[cut at 8 tokens]") == 2  # the continuation hit the limit too
    screen.send("/quit", "Enter")
    assert screen.exit_status() == "0"

    with open_memory() as memory:
        messages = transcript(memory, list_threads(memory)[0].id)
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert all(m.response_metadata.get("cut") for m in messages[1::2])
