"""The Chatbot facade: a thread of conversation with memory, personas and streaming."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.types import Durability, StateSnapshot

from agent.context import Context
from agent.errors import EmptyMessageError
from agent.graph import Graph, build_graph
from agent.nodes import thread_persona
from agent.personas import get_persona
from agent.window import valid_messages

INTERRUPTED = "interrupted"


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


class Chatbot:
    """One conversation thread: `say`/`stream` a message, read `history()`.

    Two Chatbots with the same thread id and checkpointer continue one conversation; different
    thread ids never see each other's messages.
    """

    def __init__(
        self,
        persona: str | None = None,
        thread_id: str | None = None,
        *,
        chat_model: BaseChatModel | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_turns: int | None = None,
        max_tokens: int | None = None,
        low_water: float | None = None,
        max_reply_tokens: int | None = None,
        durability: Durability = "exit",
        **persona_vars: Any,
    ) -> None:
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
        self.thread_id = thread_id or str(uuid.uuid4())
        self._persona: str | None = None
        self._persona_vars: dict[str, Any] = {}
        self.graph: Graph = build_graph(
            chat_model=chat_model,
            checkpointer=checkpointer if checkpointer is not None else InMemorySaver(),
            store=store,
        )
        self._durability: Durability = durability
        if persona is not None or persona_vars:
            self.switch_persona(persona or self.persona, **persona_vars)

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

    def switch_persona(self, name: str, **persona_vars: Any) -> None:
        """Use another persona from the next turn on (validated now)."""
        variables = {**self._persona_vars, **persona_vars}
        get_persona(name).values({**self._state().values.get("persona_vars", {}), **variables})
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
        is saved as an interrupted reply; if the model fails, the turn is rolled back.
        """
        turn, message = self._turn(text)
        received: list[str] = []
        try:
            for event in self.graph.stream(
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
            self._rollback(message)
            raise
        except BaseException:  # the consumer stopped early (GeneratorExit) or Ctrl-C
            self._settle_interrupted(message, "".join(received))
            raise

    async def asay(self, text: str) -> str:
        """Async `say`."""
        return "".join([piece async for piece in self.astream(text)])

    async def astream(self, text: str) -> AsyncIterator[str]:
        """Async `stream`, with the same saving rules."""
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
            self._rollback(message)
            raise
        except BaseException:  # the consumer stopped early (GeneratorExit) or Ctrl-C
            self._settle_interrupted(message, "".join(received))
            raise

    # --- keeping the history valid ---------------------------------------------------------

    def _rollback(self, message: HumanMessage) -> None:
        """Remove a failed turn's user message so the thread is exactly as it was."""
        from langchain_core.messages import RemoveMessage

        messages = self._state().values.get("messages", [])
        if messages and messages[-1].id == message.id:
            self.graph.update_state(
                self.config, {"messages": [RemoveMessage(id=str(message.id))]}, as_node="call_model"
            )

    def _settle_interrupted(self, message: HumanMessage, partial: str) -> None:
        """After an early stop, save what the user saw as an interrupted reply, or roll back."""
        messages = self._state().values.get("messages", [])
        if (
            messages
            and isinstance(messages[-1], AIMessage)
            and any(m.id == message.id for m in messages)
        ):
            return  # the reply was saved before the stop
        if not partial:
            self._rollback(message)
            return
        present = any(m.id == message.id for m in messages)
        update = [interrupted_reply(partial)] if present else [message, interrupted_reply(partial)]
        self.graph.update_state(self.config, {"messages": update}, as_node="call_model")
