"""The Chatbot facade: a thread of conversation with memory, personas and streaming."""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
)
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from langgraph.types import Durability, StateSnapshot

from agent.context import Context
from agent.errors import EmptyMessageError
from agent.graph import Graph, build_graph
from agent.memory import threads
from agent.memory.savers import Memory, open_memory, wrap_savers
from agent.nodes import Tool, thread_persona
from agent.personas import get_persona
from agent.window import valid_messages

INTERRUPTED = "interrupted"
log = logging.getLogger(__name__)
BOOKKEEPING_FAILED = "Thread %s: the turn is saved, but updating its record or pruning failed."


def chunk_text(event: Any) -> str:
    """The text a `messages`-mode event adds to the reply, or '' for anything else."""
    chunk, metadata = event
    if metadata.get("langgraph_node") != "call_model" or not isinstance(chunk, AIMessageChunk):
        return ""
    return str(chunk.text)


def require_text(text: str) -> str:
    """Reject empty or whitespace-only messages before anything is stored."""
    if not isinstance(text, str) or not text.strip():
        raise EmptyMessageError()
    return text


def interrupted_reply(text: str) -> AIMessage:
    """A partial reply, marked so readers (and the next turn) know it was cut off."""
    return AIMessage(content=text, response_metadata={INTERRUPTED: True})


def rollback_update(
    messages: Sequence[BaseMessage], message: HumanMessage
) -> dict[str, Any] | None:
    """The state update that removes a failed turn: its user message and any tool round after it."""
    ids = [m.id for m in messages]
    if message.id not in ids or is_final_reply(messages[-1]):
        return None  # not saved, or the reply was saved before the failure
    turn = messages[ids.index(message.id) :]
    return {"messages": [RemoveMessage(id=str(m.id)) for m in turn]}


def is_final_reply(message: BaseMessage) -> bool:
    """An assistant message that ends a turn (not a request to run tools)."""
    return isinstance(message, AIMessage) and not message.tool_calls


def settle_update(
    messages: Sequence[BaseMessage], message: HumanMessage, partial: str
) -> dict[str, Any] | None:
    """After an early stop: save what the user saw as an interrupted reply, or roll back."""
    present = any(m.id == message.id for m in messages)
    if present and messages and is_final_reply(messages[-1]):
        return None  # the reply was saved before the stop
    if not partial:
        return rollback_update(messages, message)
    return {
        "messages": [interrupted_reply(partial)]
        if present
        else [message, interrupted_reply(partial)]
    }


def new_id() -> str:
    """A fresh thread id."""
    return str(uuid.uuid4())


def require_thread_id(thread_id: str) -> str:
    """Refuse thread ids no backend can keep for a thread's whole life (empty, not text)."""
    if not isinstance(thread_id, str) or not thread_id.strip():
        raise ValueError(f"thread_id must be a non-empty string, got {thread_id!r}.")
    return thread_id


class ReplyStopped(BaseException):
    """Raised inside the model call to end a reply nobody wants any more (see Chatbot.stop)."""


class StopSwitch(BaseCallbackHandler):
    """Ends the model call at its next token once pressed, so a stopped reply stops at once.

    Without it, closing a stream early waits for the model to finish the whole reply, because
    LangGraph's sync executor waits for the running node.
    """

    raise_error = True

    def __init__(self) -> None:
        self.pressed = threading.Event()

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        """Abort the model's stream once stopped."""
        if self.pressed.is_set():
            raise ReplyStopped()


class Chatbot:
    """One conversation thread: `say`/`stream` a message, read `history()`.

    Two Chatbots with the same thread id and memory continue one conversation; different
    thread ids never see each other's messages. Memory is `memory=` if given, else the
    `checkpointer=`/`store=` given, else `open_memory()` (AGENT_DB_URL, by default a SQLite file
    in the data directory), which the Chatbot then owns and `close()`s.
    """

    def __init__(
        self,
        persona: str | None = None,
        thread_id: str | None = None,
        *,
        persona_vars: Mapping[str, Any] | None = None,
        chat_model: BaseChatModel | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        memory: Memory | None = None,
        tools: Sequence[Tool] = (),
        retriever: BaseRetriever | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_turns: int | None = None,
        max_tokens: int | None = None,
        low_water: float | None = None,
        max_reply_tokens: int | None = None,
        durability: Durability = "exit",
    ) -> None:
        """Open (or resume) a thread.

        Args:
            persona: Persona name; None keeps a resumed thread's persona (new threads:
                $AGENT_PERSONA, else "assistant").
            thread_id: The conversation to continue; None starts a new one (a UUID).
            persona_vars: Values for the persona template's `{variables}`, e.g.
                `{"user_name": "Ada"}`; names the persona does not declare are refused.
            chat_model: A LangChain chat model to use instead of the configured backend.
            checkpointer: A LangGraph checkpointer (with `store`) instead of `memory`.
            store: The LangGraph store for transcripts and thread records.
            memory: An open `agent.memory.Memory` (shared by many Chatbots); by default
                `open_memory()` (AGENT_DB_URL, else the SQLite file in the data directory),
                which this Chatbot then owns and closes.
            tools: Tools the model may call (LangChain tools or plain functions).
            retriever: A retriever whose passages are given to the model each turn.
            model: Model name for the backend (`Context.model`).
            temperature: Sampling temperature (`Context.temperature`).
            max_turns: Exchanges in the window (`Context.max_turns`).
            max_tokens: Token budget of system prompt + window (`Context.max_tokens`).
            low_water: Fraction of the budget to evict down to (`Context.low_water`).
            max_reply_tokens: Most tokens one reply may have (`Context.max_reply_tokens`).
            durability: When LangGraph writes checkpoints ("exit": once per turn).

        Raises:
            SettingError: A setting out of range (named).
            UnknownPersonaError: No persona of that name.
            UnknownVariableError: A persona variable the persona does not declare.
            MissingVariableError: The persona needs a variable that has no value.

        Example:
            ```python
            bot = Chatbot("travel_planner", persona_vars={"language": "French"})
            print(bot.say("Hi, I'd like a week somewhere warm in March."))
            ```
        """
        settings = {
            "model": model,
            "temperature": temperature,
            "max_turns": max_turns,
            "max_tokens": max_tokens,
            "low_water": low_water,
            "max_reply_tokens": max_reply_tokens,
        }
        self._settings: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
        Context(**self._settings)  # validate now, not at the first turn
        self.thread_id = require_thread_id(thread_id) if thread_id is not None else new_id()
        self._switch = StopSwitch()
        self._persona: str | None = None
        self._persona_vars: dict[str, Any] = {}
        self._close_memory: weakref.finalize[[], Chatbot] | None = None
        if memory is None and checkpointer is None and store is None:
            memory = open_memory()
            self._close_memory = weakref.finalize(self, memory.close)
        self.memory: Memory = memory if memory is not None else wrap_savers(checkpointer, store)
        self.graph: Graph = build_graph(
            chat_model=chat_model,
            checkpointer=self.memory.checkpointer,
            store=self.memory.store,
            tools=tools,
            retriever=retriever,
        )
        self._durability: Durability = durability
        if persona is not None or persona_vars:
            self.switch_persona(persona or self.persona, persona_vars)

    # --- settings -------------------------------------------------------------------------

    @property
    def config(self) -> RunnableConfig:
        """The run config that selects this thread."""
        return {"configurable": {"thread_id": self.thread_id}}

    def context(self) -> Context:
        """The per-run settings for the next turn."""
        return Context(persona=self._persona, persona_vars=self._persona_vars, **self._settings)

    @property
    def persona(self) -> str:
        """The persona the next turn uses (the thread's own unless switched)."""
        return thread_persona(self._state().values, self.context())[0]

    def switch_persona(self, name: str, persona_vars: Mapping[str, Any] | None = None) -> None:
        """Use another persona (and variable values) from the next turn on, checked now.

        Args:
            name: The persona's name.
            persona_vars: Values for its variables; they add to (and override) the values the
                thread already has.

        Raises:
            UnknownPersonaError: No persona of that name.
            UnknownVariableError: A variable the persona does not declare.
            MissingVariableError: A variable the persona needs still has no value.
        """
        persona = get_persona(name)
        given = dict(persona_vars or {})
        persona.check_variables(given)
        variables = {**self._persona_vars, **given}
        persona.values({**self._state().values.get("persona_vars", {}), **variables})
        self._persona, self._persona_vars = name, variables

    # --- reading --------------------------------------------------------------------------

    def _state(self) -> StateSnapshot:
        return self.graph.get_state(self.config)

    def history(self) -> list[BaseMessage]:
        """What the model sees next turn: the persona's system message, then the window."""
        values = self._state().values
        name, variables = thread_persona(values, self.context())
        window = valid_messages(values.get("messages", []), turn_pending=False)
        return get_persona(name).format(window, variables)

    # --- talking --------------------------------------------------------------------------

    def _turn(self, text: str) -> tuple[dict[str, Any], HumanMessage]:
        message = HumanMessage(content=require_text(text), id=str(uuid.uuid4()))
        return {"messages": [message]}, message

    def say(self, text: str) -> str:
        """Send a message and return the whole reply."""
        return "".join(self.stream(text))

    def stream(self, text: str) -> Iterator[str]:
        """Send a message and yield the reply's text as it is generated.

        The reply is saved when the stream ends. If the consumer stops early, what was received
        is saved as an interrupted reply; if the model fails, the turn is rolled back. The turn
        holds the thread's lock (another writer waits, see Memory.thread_lock), then updates the
        thread's record and prunes its old checkpoints.
        """
        require_text(text)
        with self.memory.thread_lock(self.thread_id):
            record = threads.begin_turn(self.memory, self.thread_id, text, self._persona)
            try:
                yield from self._stream_turn(text)
            finally:
                self._end_turn(record)

    def _stream_turn(self, text: str) -> Iterator[str]:
        """One turn through the graph, keeping the history valid however it ends."""
        turn, message = self._turn(text)
        received: list[str] = []
        self._switch = switch = StopSwitch()
        # Held in a variable so unwinding does not close it before the switch is pressed.
        events = self.graph.stream(
            turn,
            {**self.config, "callbacks": [switch]},
            context=self.context(),
            stream_mode="messages",
            durability=self._durability,
        )
        try:
            for event in events:
                piece = chunk_text(event)
                if piece:
                    received.append(piece)
                    yield piece
        except ReplyStopped:  # stop() was called: keep what was said, marked interrupted
            self._settle_interrupted(message, "".join(received))
        except Exception:
            self._rollback(message)
            raise
        except BaseException:  # the consumer stopped early (GeneratorExit) or Ctrl-C
            switch.pressed.set()  # the model stops at its next token instead of finishing
            close = getattr(events, "close", None)
            if close is not None:
                close()  # the graph's run ends before the partial reply is saved
            self._settle_interrupted(message, "".join(received))
            raise

    def stop(self) -> None:
        """Stop the reply `stream` is generating (safe from a signal handler or another thread).

        The stream ends at the model's next token; what was received is saved as interrupted.
        """
        self._switch.pressed.set()

    async def asay(self, text: str) -> str:
        """Async `say`."""
        return "".join([piece async for piece in self.astream(text)])

    async def astream(self, text: str) -> AsyncIterator[str]:
        """Async `stream`, with the same saving rules, on async checkpointer methods."""
        require_text(text)
        async with self.memory.athread_lock(self.thread_id):
            record = await threads.abegin_turn(self.memory, self.thread_id, text, self._persona)
            pieces = self._astream_turn(text)
            try:
                async for piece in pieces:
                    yield piece
            finally:
                await pieces.aclose()  # settle an early stop now, inside the lock
                await self._aend_turn(record)

    async def _astream_turn(self, text: str) -> AsyncGenerator[str, None]:
        """Async `_stream_turn`."""
        turn, message = self._turn(text)
        received: list[str] = []
        try:
            async for event in self.graph.astream(
                turn,
                self.config,
                context=self.context(),
                stream_mode="messages",
                durability=self._durability,
            ):
                piece = chunk_text(event)
                if piece:
                    received.append(piece)
                    yield piece
        except Exception:
            await self._arollback(message)
            raise
        except BaseException:  # the consumer stopped early (GeneratorExit) or Ctrl-C
            await self._asettle_interrupted(message, "".join(received))
            raise

    # --- keeping the history valid ---------------------------------------------------------

    def _rollback(self, message: HumanMessage) -> None:
        """Remove a failed turn's user message so the thread is exactly as it was."""
        self._apply(rollback_update(self._state().values.get("messages", []), message))

    async def _arollback(self, message: HumanMessage) -> None:
        """Async `_rollback`."""
        state = await self.graph.aget_state(self.config)
        await self._aapply(rollback_update(state.values.get("messages", []), message))

    def _settle_interrupted(self, message: HumanMessage, partial: str) -> None:
        """After an early stop, save what the user saw as an interrupted reply, or roll back."""
        messages = self._state().values.get("messages", [])
        self._apply(settle_update(messages, message, partial))

    async def _asettle_interrupted(self, message: HumanMessage, partial: str) -> None:
        """Async `_settle_interrupted`."""
        state = await self.graph.aget_state(self.config)
        await self._aapply(settle_update(state.values.get("messages", []), message, partial))

    def _apply(self, update: dict[str, Any] | None) -> None:
        if update is not None:
            self.graph.update_state(self.config, update, as_node="call_model")

    async def _aapply(self, update: dict[str, Any] | None) -> None:
        if update is not None:
            await self.graph.aupdate_state(self.config, update, as_node="call_model")

    # --- memory: bookkeeping, transcript, thread admin ---------------------------------------

    def _end_turn(self, record: Mapping[str, Any]) -> None:
        """Update the thread's record, pruning old checkpoints when due (the turn is saved)."""
        try:
            threads.end_turn(self.memory, self.thread_id, record, self._state().values)
        except Exception:  # report housekeeping trouble; failing the saved turn would mislead
            log.warning(
                "Thread %s: bookkeeping after the turn failed.", self.thread_id, exc_info=True
            )

    async def _aend_turn(self, record: Mapping[str, Any]) -> None:
        """Async `_end_turn`."""
        try:
            state = await self.graph.aget_state(self.config)
            await threads.aend_turn(self.memory, self.thread_id, record, state.values)
        except Exception:
            log.warning(
                "Thread %s: bookkeeping after the turn failed.", self.thread_id, exc_info=True
            )

    def transcript(self) -> list[BaseMessage]:
        """The whole conversation, in order and without duplicates: archived messages + window.

        Unlike `history()` there is no system prompt and nothing is left out: the model sees only
        the window, the transcript keeps everything (an interrupted reply keeps its
        `response_metadata["interrupted"]` flag).
        """
        values = self._state().values
        archived = self.memory.archive.read(self.thread_id, int(values.get("archived", 0)))
        return threads.merge_transcript(archived, values.get("messages", []))

    async def atranscript(self) -> list[BaseMessage]:
        """Async `transcript`."""
        values = (await self.graph.aget_state(self.config)).values
        count = int(values.get("archived", 0))
        archived = await self.memory.archive.aread(self.thread_id, count)
        return threads.merge_transcript(archived, values.get("messages", []))

    def export(self, format: Literal["json", "markdown"] = "json") -> str:
        """This thread's whole transcript as JSON or Markdown (see agent.memory.threads)."""
        return threads.export_thread(self.memory, self.thread_id, format)

    def delete(self) -> bool:
        """Delete this thread: checkpoints, transcript and listing; False if nothing was saved."""
        return threads.delete_thread(self.memory, self.thread_id)

    def close(self) -> None:
        """Close the memory this Chatbot opened itself (memory handed in stays open)."""
        if self._close_memory is not None:
            self._close_memory()

    def __enter__(self) -> Chatbot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Chatbot:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
