"""Shared fake chat models: chunked streaming, a fresh message per call, recorded inputs."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

Reply = Callable[[Sequence[BaseMessage]], str]
PAUSE_LIMIT = 120.0  # a paused fake gives up after this long, so a broken test fails, not hangs


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
    pause_after: int | None = None  # stream this many chunks, then wait for resume()
    produced: int = 0  # chunks streamed so far, over all calls
    cancelled: int = 0  # async streams cancelled while paused (the caller gave up on them)
    finish: dict[str, Any] = Field(default_factory=dict)  # the last chunk's response_metadata
    reports_usage: bool = False  # the last chunk carries usage (prompt tokens approximated)
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _resume: threading.Event = PrivateAttr(default_factory=threading.Event)

    def resume(self) -> None:
        """Let a stream paused at `pause_after` go on (lockstep tests need no sleeps)."""
        self._resume.set()

    def _paused_before(self, number: int) -> bool:
        """Whether chunk `number` must wait for resume(); counts the chunk as produced."""
        with self._lock:
            self.produced += 1
        return self.pause_after is not None and number == self.pause_after

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
        chunks = list(self._chunks(messages))
        text = "".join(c.text for c in chunks)
        reply = AIMessage(content=text, response_metadata=dict(self.finish),
                          usage_metadata=chunks[-1].usage_metadata)  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        parts = pieces(self._record(messages), self.chunk_size)
        for number, piece in enumerate(parts):
            if self.fail_after_chunks is not None and number >= self.fail_after_chunks:
                raise ConnectionError("fake model dropped the connection")
            last = number == len(parts) - 1
            yield AIMessageChunk(
                content=piece,
                response_metadata=dict(self.finish) if last else {},
                usage_metadata=self._usage(messages, len(parts)) if last else None,
            )

    def _usage(self, messages: list[BaseMessage], pieces: int) -> UsageMetadata | None:
        if not self.reports_usage:
            return None
        prompt = count_tokens_approximately(messages)
        return UsageMetadata(input_tokens=prompt, output_tokens=pieces,
                             total_tokens=prompt + pieces)  # fmt: skip

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for number, chunk in enumerate(self._chunks(messages)):
            if self._paused_before(number):
                self._resume.wait(PAUSE_LIMIT)
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
        for number, chunk in enumerate(self._chunks(messages)):
            if self._paused_before(number):
                try:
                    await asyncio.to_thread(self._resume.wait, PAUSE_LIMIT)
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            await asyncio.sleep(self.delay)
            if run_manager:
                await run_manager.on_llm_new_token(
                    chunk.text, chunk=ChatGenerationChunk(message=chunk)
                )
            yield ChatGenerationChunk(message=chunk)


def model_texts(call: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """(type, text) pairs of one recorded model input, for readable assertions."""
    return [(m.type, str(m.text)) for m in call]


# --- a scripted tool-calling model -------------------------------------------------------------

ToolScript = Callable[[Sequence[BaseMessage]], AIMessage]
NO_TOOLS_REPLY = "I have to answer without tools now."


def tool_call(name: str, args: dict[str, Any], call_id: str | None = None) -> ToolCall:
    """A tool call with a fresh id (as real models make)."""
    return ToolCall(name=name, args=args, id=call_id or f"call_{uuid.uuid4().hex[:12]}")


def call_then_answer(name: str, args_for: Callable[[str], dict[str, Any]]) -> ToolScript:
    """Call tool `name` once per user message, then answer with what the tool returned."""

    def script(messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(content=f"The tool said: {last.text}")
        return AIMessage(content="", tool_calls=[tool_call(name, args_for(str(last.text)))])

    return script


class ToolCallingFake(BaseChatModel):
    """Plays a script that may call tools; records inputs, offered tools and tool_choice.

    Like a real API: with `tool_choice="none"` (or no tools bound) it cannot call tools. It streams
    text and tool-call chunks, and every reply is a fresh message (its id comes from the run).
    """

    script: ToolScript
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    offered: list[list[str]] = Field(default_factory=list)
    tool_choices: list[Any] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "fake-tool-calling-chat"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[Any, AIMessage]:
        schemas = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=schemas, tool_choice=tool_choice, **kwargs)

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        names = [t["function"]["name"] for t in kwargs.get("tools", [])]
        choice = kwargs.get("tool_choice")
        with self._lock:
            self.calls.append(list(messages))
            self.offered.append(names)
            self.tool_choices.append(choice)
        reply = self.script(messages)
        if reply.tool_calls and (not names or choice == "none"):
            return AIMessage(content=NO_TOOLS_REPLY)
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages, kwargs)
        chunks = [AIMessageChunk(content=piece) for piece in pieces(str(reply.content))]
        chunks += [
            AIMessageChunk(
                content="",
                tool_call_chunks=[
                    ToolCallChunk(
                        name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=i
                    )
                ],
            )
            for i, call in enumerate(reply.tool_calls)
        ]
        for chunk in chunks:
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)


# --- deterministic summarizer and fact extractor (issue 14) -----------------------------------

SUMMARIZER_MARK = "running summary"
CONDENSER_MARK = "Shorten this summary"
EXTRACTOR_MARK = "You keep notes about the user"
FACT_PATTERNS = (
    (re.compile(r"my name is (\w+)", re.I), "name"),
    (re.compile(r"I (?:live|moved) (?:in|to) (\w+)", re.I), "home city"),
    (re.compile(r"I work as an? (\w+)", re.I), "job"),
    (re.compile(r"I(?:'m| am) (vegetarian|vegan)", re.I), "diet"),
)


def role_of(messages: Sequence[BaseMessage]) -> str:
    """Which job a prompt asks for: 'summarize', 'condense', 'extract' or 'chat'."""
    first = str(messages[0].text) if messages else ""
    if SUMMARIZER_MARK in first:
        return "summarize"
    if first.startswith(CONDENSER_MARK):
        return "condense"
    if first.startswith(EXTRACTOR_MARK):
        return "extract"
    return "chat"


def fake_summary(messages: Sequence[BaseMessage]) -> str:
    """The summary so far plus one sentence per evicted user line ('The user said: ...')."""
    body = str(messages[-1].text)
    before, _, new = body.partition("\n\nNew messages:\n")
    summary = before.removeprefix("Summary so far:\n").strip()
    summary = "" if summary == "(none yet)" else summary
    said = [
        f"The user said: {line.removeprefix('User: ').rstrip('.!?')}."
        for line in new.splitlines()
        if line.startswith("User: ")
    ]
    return " ".join([summary, *said]).strip()


def fake_facts(messages: Sequence[BaseMessage]) -> str:
    """'topic: fact' lines for the patterns the latest user message matches, else NONE."""
    text = str(messages[-1].text)
    found = [f"{topic}: {m.group(1)}" for p, topic in FACT_PATTERNS if (m := p.search(text))]
    return "\n".join(found) or "NONE"


def with_memory_jobs(reply: Reply = echo_last) -> Reply:
    """A reply function that also summarizes, condenses and extracts, deterministically."""

    def respond(messages: Sequence[BaseMessage]) -> str:
        role = role_of(messages)
        if role == "summarize":
            return fake_summary(messages)
        if role == "condense":
            return str(messages[-1].text).split(". ")[0].rstrip(".") + "."
        if role == "extract":
            return fake_facts(messages)
        return reply(messages)

    return respond


def chat_calls(calls: Sequence[Sequence[BaseMessage]]) -> list[list[BaseMessage]]:
    """The recorded inputs of conversation turns only (no summarizer or extractor calls)."""
    return [list(call) for call in calls if role_of(call) == "chat"]
