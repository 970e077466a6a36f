"""Shared fake chat models: they stream in chunks, make a fresh message per call, and record input."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

Reply = Callable[[Sequence[BaseMessage]], str]


def echo_last(messages: Sequence[BaseMessage]) -> str:
    """Answer with the last user text, so tests can tell replies apart."""
    return f"You said: {messages[-1].text}"


def pieces(text: str, size: int = 4) -> list[str]:
    """Split a reply into the chunks the fake streams."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeChat(BaseChatModel):
    """Streams a scripted reply in small chunks and records every input it was sent."""

    reply: Reply = echo_last
    chunk_size: int = 4
    delay: float = 0.0
    fail_after_chunks: int | None = None
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    def _record(self, messages: list[BaseMessage]) -> str:
        with self._lock:
            self.calls.append(list(messages))
        return self.reply(messages)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(c.text for c in self._chunks(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        for number, piece in enumerate(pieces(self._record(messages), self.chunk_size)):
            if self.fail_after_chunks is not None and number >= self.fail_after_chunks:
                raise ConnectionError("fake model dropped the connection")
            yield AIMessageChunk(content=piece)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if self.delay:
                time.sleep(self.delay)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            await asyncio.sleep(self.delay)
            if run_manager:
                await run_manager.on_llm_new_token(
                    chunk.text, chunk=ChatGenerationChunk(message=chunk)
                )
            yield ChatGenerationChunk(message=chunk)


def model_texts(call: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """(type, text) pairs of one recorded model input, for readable assertions."""
    return [(m.type, str(m.text)) for m in call]
