"""Wiring only: `START -> trim -> recall -> [retrieve ->] call_model [<-> tools] -> ...`.

After the reply: `compact` and/or `remember` when due (see agent.post_reply), then END.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from agent.context import Context
from agent.memory.longterm import BUNDLED, resolve_embeddings
from agent.models import Backend, backend_for
from agent.nodes import Tool, make_call_model, make_trim
from agent.post_reply import POST_REPLY_NODES, make_route_after_model
from agent.recall import make_recall, make_remember
from agent.retrieval.node import make_retrieve, passage_reserve
from agent.state import InputState, State
from agent.summary import make_compact
from agent.window import TokenCounter

Graph = CompiledStateGraph[Any, Any, Any, Any]


def builder(
    *,
    backend: Backend | None = None,
    chat_model: BaseChatModel | None = None,
    token_counter: TokenCounter | None = None,
    tools: Sequence[Tool] = (),
    retriever: BaseRetriever | None = None,
    embeddings: Embeddings | None | Literal["bundled"] = BUNDLED,
) -> StateGraph[Any, Any, Any, Any]:
    """The uncompiled graph, for callers that compile it themselves (e.g. the LangGraph server).

    `START -> trim -> recall -> [retrieve ->] call_model`, with tools a loop
    `call_model -> tools -> call_model` until the model answers without calling a tool, then,
    when due, `compact` (evict and fold into the running summary) and `remember` (learn facts
    about the user), after the reply, and END.

    Args:
        backend: Where replies come from (default: the one the environment configures, see
            `agent.models.resolve_backend`); it also sizes the window and caps replies.
        chat_model: Any LangChain chat model instead of a backend (tests pass fakes).
        token_counter: How to count the window's tokens for `chat_model` (default: about
            4 characters a token).
        tools: Tools the model may call (needs a model that can call tools).
        retriever: Adds a `retrieve` node that puts passages into the prompt.
        embeddings: What ranks a user's facts by meaning ("bundled": the MiniLM of the `rag`
            extra if installed; None: by recency).

    Returns:
        The uncompiled `StateGraph`; building it starts no model.

    Raises:
        TypeError: If both `backend` and `chat_model` (or `token_counter`) are given.
        ValueError: If the environment names an impossible backend.

    Example:
        >>> from agent.graph import builder
        >>> graph = builder().compile()  # what graphs/chatbot.py serves
    """
    models = backend_for(backend, chat_model, token_counter)
    graph = StateGraph(State, input_schema=InputState, context_schema=Context)
    reserved = passage_reserve() if retriever is not None else 0
    facts_by = resolve_embeddings(embeddings)
    graph.add_node(make_trim(models, reserved_tokens=reserved))
    graph.add_node(make_recall(models, facts_by))
    graph.add_node(make_call_model(models, tools))
    graph.add_node(make_compact(models, reserved, facts_by))
    graph.add_node(make_remember(models, facts_by))
    graph.add_edge(START, "trim")
    graph.add_edge("trim", "recall")
    if retriever is None:
        graph.add_edge("recall", "call_model")
    else:
        graph.add_node(make_retrieve(retriever))
        graph.add_edge("recall", "retrieve")
        graph.add_edge("retrieve", "call_model")
    after_reply = [*POST_REPLY_NODES, END]
    if tools:
        graph.add_node("tools", ToolNode(tools, handle_tool_errors=True))
        graph.add_edge("tools", "call_model")
    route = make_route_after_model(models, reserved)
    graph.add_conditional_edges(
        "call_model", route, ["tools", *after_reply] if tools else after_reply
    )
    for name in POST_REPLY_NODES:
        graph.add_edge(name, END)
    return graph


def build_graph(
    *,
    backend: Backend | None = None,
    chat_model: BaseChatModel | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    token_counter: TokenCounter | None = None,
    tools: Sequence[Tool] = (),
    retriever: BaseRetriever | None = None,
    embeddings: Embeddings | None | Literal["bundled"] = BUNDLED,
) -> Graph:
    """A compiled graph for Python use; evicted messages go to `store` (in memory by default).

    Args:
        backend: Where replies come from (default: the environment's; see `builder`).
        chat_model: Any LangChain chat model instead of a backend.
        checkpointer: Where threads are saved (None: nowhere, one run at a time).
        store: Where the transcript archive lives (default: in memory).
        token_counter: How to count tokens for `chat_model`.
        tools: Tools the model may call.
        retriever: Adds a `retrieve` node.
        embeddings: What ranks a user's facts by meaning (see `builder`).

    Returns:
        The compiled graph.

    Raises:
        TypeError: If both `backend` and `chat_model` (or `token_counter`) are given.
    """
    return builder(
        backend=backend,
        chat_model=chat_model,
        token_counter=token_counter,
        tools=tools,
        retriever=retriever,
        embeddings=embeddings,
    ).compile(checkpointer=checkpointer, store=store if store is not None else InMemoryStore())
