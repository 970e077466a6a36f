"""Test-only graph for server tests: the real graph wired to a scripted fake model (no weights)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from langchain_core.messages import BaseMessage

# The server loads this file by path; make `tests.fakes` importable whatever the server's sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.graph import builder  # noqa: E402
from tests.fakes import FakeChat  # noqa: E402


def describe_input(messages: Sequence[BaseMessage]) -> str:
    """Reply with what the model was sent (and which process ran it): persona, memory, replica."""
    system = str(messages[0].text) if messages and messages[0].type == "system" else ""
    said = " | ".join(str(m.text) for m in messages if m.type == "human")
    return f"[{system[:40]}] heard: {said} (pid {os.getpid()})"


graph = builder(
    chat_model=FakeChat(
        reply=describe_input,
        chunk_size=8,
        delay=float(os.environ.get("FAKE_CHUNK_DELAY", "0")),
    )
).compile()
