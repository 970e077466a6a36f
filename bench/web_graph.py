"""Bench-only graph: the real graph with a fake model that streams a fixed reply at a fixed pace.

Every reply is the same Markdown text (a paragraph, a code block, a table) in CHUNKS chunks, one
every CHUNK_SECONDS, so the only thing that differs between the measured paths is the stack.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from langchain_core.messages import BaseMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.graph import builder  # noqa: E402
from tests.fakes import FakeChat  # noqa: E402

CHUNK_SIZE = 8
CHUNK_SECONDS = 0.01
REPLY = (
    "Here is a short answer with **bold** text, a list and some code.\n\n"
    "- first point\n- second point\n- third point\n\n"
    "```python\ndef greet(name):\n    return f'Hello, {name}!'\n\nprint(greet('Ada'))\n```\n\n"
    "| step | seconds |\n| --- | --- |\n| parse | 0.1 |\n| answer | 0.2 |\n\n"
    "That is all for now; ask me more if you like.\n"
)
CHUNKS = len(range(0, len(REPLY), CHUNK_SIZE))


def fixed_reply(messages: Sequence[BaseMessage]) -> str:
    """The same reply whatever was said."""
    return REPLY


def bench_model() -> FakeChat:
    """The fake model every measured path uses."""
    return FakeChat(reply=fixed_reply, chunk_size=CHUNK_SIZE, delay=CHUNK_SECONDS)


graph = builder(chat_model=bench_model()).compile()
