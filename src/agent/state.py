"""The graph state: the window of messages plus what a thread must remember between turns."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class Passage(TypedDict):
    """A retrieved piece of text and its source (a plain dict, so every saver can store it)."""

    source: str
    section: str
    text: str


class InputState(TypedDict, total=False):
    """What a run's input may write: new messages. The rest of the state is the graph's own."""

    messages: Annotated[list[AnyMessage], add_messages]


class Recalled(TypedDict):
    """A long-term memory shown to the model in this thread (checked against the store per turn)."""

    key: str
    text: str
    updated_at: str


class State(TypedDict, total=False):
    """A thread's stored state; `messages` is the window (the system prompt is never stored)."""

    messages: Annotated[list[AnyMessage], add_messages]
    persona: str
    persona_vars: dict[str, Any]
    archived: int  # messages that left the window so far (they are in the transcript)
    evicted: int  # exchanges the window evicted during the latest turn (0: none)
    passages: list[Passage]  # this turn's retrieved context (system prompt only), replaced per turn
    summary: str  # what the window evicted, folded into a few sentences (issue 14)
    summarized: int  # how many archived messages the summary covers
    summary_due: bool  # `trim` evicted in front of this turn's model call: fold at its end
    compacted: int  # exchanges `compact` evicted after the latest reply (next turn's `evicted`)
    recalled: list[Recalled] | None  # the user's long-term memories shown here; None: recall
