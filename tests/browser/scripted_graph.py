"""Test-only graph for the browser tests: the real graph, a model scripted by the message's prefix.

- `slow: ...`  streams a long reply slowly (Stop, reload and second-tab tests catch it mid-way);
- `md: ...`    answers with Markdown: a code block, a table, emphasis;
- `flaky: ...` fails like an unreachable model server the first time, then answers;
- anything else: what the model was sent (persona and every user message), as tests/fakes.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

# The server loads this file by path; make `tests` importable whatever the server's sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.graph import builder  # noqa: E402
from tests.fakes import FakeChat, pieces  # noqa: E402

MARKDOWN_REPLY = (
    "Here is **bold** text and code:\n\n"
    "```python\nprint('hello')\n```\n\n"
    "| planet | moons |\n| --- | --- |\n| Mars | 2 |\n| Earth | 1 |\n\n"
    "That is all."
)
SLOW_REPLY = " ".join(f"word{i}" for i in range(150))
SLOW_CHUNK_SECONDS = 0.1


def describe_input(messages: Sequence[BaseMessage]) -> str:
    """What the model was sent: the start of the system prompt and every user message."""
    system = str(messages[0].text) if messages and messages[0].type == "system" else ""
    said = " | ".join(str(m.text) for m in messages if m.type == "human")
    return f"[{system[:40]}] heard: {said}"


class ScriptedChat(FakeChat):
    """Replies by the latest user message's prefix (see the module docstring)."""

    failed: set[str] = Field(default_factory=set)
    _failed_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _plan(self, messages: list[BaseMessage]) -> tuple[str, float]:
        """The reply and the pause before each chunk."""
        last = str(messages[-1].text)
        if last.startswith("slow:"):
            return SLOW_REPLY, SLOW_CHUNK_SECONDS
        if last.startswith("md:"):
            return MARKDOWN_REPLY, self.delay
        if last.startswith("flaky:"):
            with self._failed_lock:
                first_time = last not in self.failed
                self.failed.add(last)
            if first_time:
                raise httpx.ConnectError("scripted: connection refused")
        return describe_input(messages), self.delay

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(chunk.text for chunk in self._stream(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _script(self, messages: list[BaseMessage]) -> tuple[list[ChatGenerationChunk], float]:
        """The reply's chunks and the pause before each (the server streams asynchronously)."""
        self.calls.append(list(messages))
        reply, delay = self._plan(messages)
        chunks = [AIMessageChunk(content=piece) for piece in pieces(reply, self.chunk_size)]
        return [ChatGenerationChunk(message=chunk) for chunk in chunks], delay

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chunks, delay = self._script(messages)
        for chunk in chunks:
            time.sleep(delay)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        chunks, delay = self._script(messages)
        for chunk in chunks:
            await asyncio.sleep(delay)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


graph = builder(
    chat_model=ScriptedChat(chunk_size=8, delay=float(os.environ.get("FAKE_CHUNK_DELAY", "0.02")))
).compile()
