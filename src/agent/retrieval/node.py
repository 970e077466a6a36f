"""The `retrieve` node: find passages for the latest user message with any LangChain retriever."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig

from agent.retrieval.passages import PASSAGES_HEADER, to_passages
from agent.state import State

DEFAULT_MAX_CHARS = 3000  # ~750 tokens: room for the window even in a 2,048-token context
CHARS_PER_TOKEN = 4  # the same approximation as langchain's count_tokens_approximately


def passage_reserve(max_chars: int = DEFAULT_MAX_CHARS) -> int:
    """Tokens the window leaves free for a turn's passages (their text plus the header)."""
    return math.ceil((max_chars + len(PASSAGES_HEADER)) / CHARS_PER_TOKEN) + 16


def latest_user_text(state: State) -> str:
    """The text of the newest user message (the one this turn answers)."""
    for message in reversed(state.get("messages", [])):
        if isinstance(message, HumanMessage):
            return str(message.text)
    return ""


def make_retrieve(
    retriever: BaseRetriever, *, max_chars: int = DEFAULT_MAX_CHARS
) -> Callable[..., dict[str, Any]]:
    """Build the `retrieve` node around a retriever and a passage budget in characters."""

    def retrieve(state: State, config: RunnableConfig) -> dict[str, Any]:
        """Replace the turn's passages with what the retriever finds for the latest message."""
        query = latest_user_text(state).strip()
        documents = retriever.invoke(query, config) if query else []
        return {"passages": to_passages(documents, max_chars)}

    return retrieve
