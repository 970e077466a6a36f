"""Wiring only: `START -> trim -> [retrieve ->] call_model [<-> tools] -> END`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.retrievers import BaseRetriever
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from agent.context import Context
from agent.models import chat_model as configured_chat_model
from agent.models import window_budget
from agent.models.tokens import token_counter as configured_token_counter
from agent.nodes import (
    BudgetFactory,
    CounterFactory,
    ModelFactory,
    Tool,
    make_call_model,
    make_trim,
    route_after_model,
)
from agent.retrieval.node import make_retrieve, passage_reserve
from agent.state import InputState, State
from agent.window import TokenCounter

Graph = CompiledStateGraph[Any, Any, Any, Any]


def _model_factory(chat_model: BaseChatModel | None) -> ModelFactory:
    """Use the given model for every run, or build the configured one per run's settings."""
    if chat_model is not None:
        return lambda context: chat_model
    return lambda context: configured_chat_model(
        context.model,
        context.temperature,
        max_reply_tokens=context.max_reply_tokens,
        window_tokens=context.max_tokens,
    )


def _counter_factory(
    chat_model: BaseChatModel | None, token_counter: TokenCounter | None
) -> CounterFactory:
    """Count with the given counter, an approximation for injected models, or the backend's."""
    if token_counter is not None:
        return lambda context: token_counter
    if chat_model is not None:
        return lambda context: count_tokens_approximately
    return lambda context: configured_token_counter(context.model, window_tokens=context.max_tokens)


def _budget_factory(chat_model: BaseChatModel | None) -> BudgetFactory:
    """The run's max_tokens, or for the configured backend its default (embedded: slot size)."""
    if chat_model is not None:
        return lambda context: context.max_tokens
    return lambda context: window_budget(
        context.max_tokens, context.max_reply_tokens, context.model
    )


def builder(
    *,
    chat_model: BaseChatModel | None = None,
    token_counter: TokenCounter | None = None,
    tools: Sequence[Tool] = (),
    retriever: BaseRetriever | None = None,
) -> StateGraph[Any, Any, Any, Any]:
    """The uncompiled graph, for callers that compile it themselves (e.g. the LangGraph server).

    `START -> trim -> [retrieve ->] call_model -> END`, and with tools a loop
    `call_model -> tools -> call_model` until the model answers without calling a tool.
    """
    graph = StateGraph(State, input_schema=InputState, context_schema=Context)
    graph.add_node(
        make_trim(
            _counter_factory(chat_model, token_counter),
            _budget_factory(chat_model),
            reserved_tokens=passage_reserve() if retriever is not None else 0,
        )
    )
    graph.add_node(make_call_model(_model_factory(chat_model), tools))
    graph.add_edge(START, "trim")
    if retriever is None:
        graph.add_edge("trim", "call_model")
    else:
        graph.add_node(make_retrieve(retriever))
        graph.add_edge("trim", "retrieve")
        graph.add_edge("retrieve", "call_model")
    if not tools:
        graph.add_edge("call_model", END)
    else:
        graph.add_node("tools", ToolNode(tools, handle_tool_errors=True))
        graph.add_conditional_edges("call_model", route_after_model, ["tools", END])
        graph.add_edge("tools", "call_model")
    return graph


def build_graph(
    *,
    chat_model: BaseChatModel | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    token_counter: TokenCounter | None = None,
    tools: Sequence[Tool] = (),
    retriever: BaseRetriever | None = None,
) -> Graph:
    """A compiled graph for Python use; evicted messages go to `store` (in memory by default)."""
    return builder(
        chat_model=chat_model, token_counter=token_counter, tools=tools, retriever=retriever
    ).compile(checkpointer=checkpointer, store=store if store is not None else InMemoryStore())
