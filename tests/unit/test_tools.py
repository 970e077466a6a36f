"""Tools as a node: the call_model <-> tools loop, errors as results, the window across tools."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from agent import Chatbot, Context, build_graph
from agent.graph import builder
from agent.memory.archive import StoreArchive
from agent.nodes import MAX_TOOL_ROUNDS
from agent.window import exchanges, tool_call_ids, valid_messages
from tests.fakes import (
    NO_TOOLS_REPLY,
    ToolCallingFake,
    call_then_answer,
    chat_calls,
    tool_call,
)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def numbers(text: str) -> dict[str, Any]:
    a, b = (int(n) for n in re.findall(r"-?\d+", text)[:2])
    return {"a": a, "b": b}


def run_turn(graph: Any, thread: str, text: str, **context: Any) -> list[BaseMessage]:
    config = {"configurable": {"thread_id": thread}}
    graph.invoke({"messages": [HumanMessage(content=text)]}, config, context=Context(**context))
    return list(graph.get_state(config).values["messages"])


def assert_tool_rounds_whole(messages: Sequence[BaseMessage]) -> None:
    """Every tool call has its result after it, every result has its call before it."""
    open_calls: set[str] = set()
    for message in messages:
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in open_calls, f"orphan tool result {message.tool_call_id}"
            open_calls.discard(message.tool_call_id)
        open_calls |= tool_call_ids(message)
    assert not open_calls, f"tool calls without results: {open_calls}"


def assert_valid_model_input(call: Sequence[BaseMessage]) -> None:
    assert isinstance(call[0], SystemMessage)
    assert not any(isinstance(m, SystemMessage) for m in call[1:])
    assert isinstance(call[1], HumanMessage)
    # A pending round (the call whose results are being sent) is closed by its results.
    assert_tool_rounds_whole(call)


# --- wiring ---------------------------------------------------------------------------------


def test_without_tools_the_graph_is_unchanged() -> None:
    model = ToolCallingFake(script=call_then_answer("add", numbers))
    assert set(builder(chat_model=model).nodes) == {
        "trim",
        "recall",
        "call_model",
        "compact",
        "remember",
    }


def test_tools_add_a_tools_node_that_loops_back_to_the_model() -> None:
    model = ToolCallingFake(script=call_then_answer("add", numbers))
    graph = build_graph(chat_model=model, tools=[add])
    assert set(graph.get_graph().nodes) == {
        "__start__",
        "trim",
        "recall",
        "call_model",
        "tools",
        "compact",
        "remember",
        "__end__",
    }
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    assert {("call_model", "tools"), ("tools", "call_model"), ("call_model", "__end__")} <= edges


# --- the loop -------------------------------------------------------------------------------


def test_a_tool_call_then_a_final_answer_is_stored_whole() -> None:
    model = ToolCallingFake(script=call_then_answer("add", numbers))
    graph = build_graph(chat_model=model, tools=[add], checkpointer=InMemorySaver())
    messages = run_turn(graph, "t", "What is 2 + 40?")
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    call, result, answer = messages[1], messages[2], messages[3]
    assert isinstance(call, AIMessage) and call.tool_calls[0]["args"] == {"a": 2, "b": 40}
    assert isinstance(result, ToolMessage) and result.tool_call_id == call.tool_calls[0]["id"]
    assert result.content == "42" and result.status == "success"
    assert answer.content == "The tool said: 42"
    assert len({m.id for m in messages}) == 4  # fresh ids: nothing replaced anything
    assert model.offered == [["add"], ["add"]]
    assert [m.type for m in model.calls[1]] == ["system", "human", "ai", "tool"]


def test_several_tool_calls_in_one_reply_each_get_their_result() -> None:
    def script(messages: Sequence[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            results = [m.text for m in messages if isinstance(m, ToolMessage)]
            return AIMessage(content=" and ".join(results))
        return AIMessage(
            content="",
            tool_calls=[tool_call("add", {"a": 1, "b": 2}), tool_call("add", {"a": 3, "b": 4})],
        )

    graph = build_graph(
        chat_model=ToolCallingFake(script=script), tools=[add], checkpointer=InMemorySaver()
    )
    messages = run_turn(graph, "t", "Two sums please")
    assert [m.type for m in messages] == ["human", "ai", "tool", "tool", "ai"]
    assert messages[-1].content == "3 and 7"
    assert_tool_rounds_whole(messages)


def test_the_chatbot_streams_only_the_answer_text_and_keeps_the_tool_round() -> None:
    model = ToolCallingFake(script=call_then_answer("add", numbers))
    bot = Chatbot(chat_model=model, tools=[add], checkpointer=InMemorySaver())
    assert bot.say("Add 5 and 6") == "The tool said: 11"
    history = bot.history()
    assert [m.type for m in history] == ["system", "human", "ai", "tool", "ai"]
    assert bot.say("Add 1 and 1") == "The tool said: 2"


def test_a_model_that_never_stops_calling_tools_must_answer_after_the_round_limit() -> None:
    def always_call(messages: Sequence[BaseMessage]) -> AIMessage:
        return AIMessage(content="", tool_calls=[tool_call("add", {"a": 1, "b": 1})])

    model = ToolCallingFake(script=always_call)
    graph = build_graph(chat_model=model, tools=[add], checkpointer=InMemorySaver())
    messages = run_turn(graph, "t", "Loop forever")
    assert messages[-1].content == NO_TOOLS_REPLY
    assert sum(1 for m in messages if isinstance(m, ToolMessage)) == MAX_TOOL_ROUNDS
    assert model.tool_choices[-1] == "none" and model.tool_choices[:-1] == [None] * MAX_TOOL_ROUNDS
    assert_tool_rounds_whole(messages)


# --- a tool that raises --------------------------------------------------------------------


def test_a_failing_tool_reports_its_error_to_the_model_and_the_thread_stays_valid() -> None:
    model = ToolCallingFake(script=call_then_answer("divide", numbers))
    bot = Chatbot(chat_model=model, tools=[divide], checkpointer=InMemorySaver())
    reply = bot.say("Divide 1 by 0")
    sent_back = model.calls[1][-1]
    assert isinstance(sent_back, ToolMessage) and sent_back.status == "error"
    assert "ZeroDivisionError" in sent_back.text
    assert reply == f"The tool said: {sent_back.text}"  # the model's next answer is saved
    stored = bot.graph.get_state(bot.config).values["messages"]
    assert [m.type for m in stored] == ["human", "ai", "tool", "ai"]
    assert valid_messages(stored, turn_pending=False) == stored
    assert bot.say("Divide 8 by 2") == "The tool said: 4.0"
    assert_valid_model_input(model.calls[-1])


def test_a_call_to_an_unknown_tool_also_comes_back_as_an_error_result() -> None:
    def wrong_tool(messages: Sequence[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content="Sorry, that tool does not exist.")
        return AIMessage(content="", tool_calls=[tool_call("nope", {})])

    graph = build_graph(
        chat_model=ToolCallingFake(script=wrong_tool), tools=[add], checkpointer=InMemorySaver()
    )
    messages = run_turn(graph, "t", "Use a tool")
    result = messages[2]
    assert isinstance(result, ToolMessage) and result.status == "error"
    assert "nope" in result.text and "add" in result.text  # names the valid tools
    assert messages[-1].content == "Sorry, that tool does not exist."


def test_bad_tool_arguments_come_back_as_an_error_result() -> None:
    def bad_args(messages: Sequence[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content="I will ask properly.")
        return AIMessage(content="", tool_calls=[tool_call("add", {"a": "two"})])

    graph = build_graph(
        chat_model=ToolCallingFake(script=bad_args), tools=[add], checkpointer=InMemorySaver()
    )
    messages = run_turn(graph, "t", "Add things")
    result = messages[2]
    assert isinstance(result, ToolMessage) and result.status == "error"
    assert "valid integer" in result.text and "b: Field required" in result.text
    assert messages[-1].content == "I will ask properly."


# --- the window across tool turns -------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [None, 400])
def test_trimming_across_tool_turns_never_splits_or_orphans_a_call(max_tokens: int | None) -> None:
    model = ToolCallingFake(script=call_then_answer("add", numbers))
    store = InMemoryStore()
    graph = build_graph(chat_model=model, tools=[add], checkpointer=InMemorySaver(), store=store)
    settings = {"max_turns": 3, "low_water": 0.5, "max_tokens": max_tokens}
    for turn in range(12):
        messages = run_turn(graph, "t", f"Add {turn} and 100", **settings)
        assert isinstance(messages[0], HumanMessage)
        assert_tool_rounds_whole(messages)
        assert valid_messages(messages, turn_pending=False) == messages
        assert all(
            [m.type for m in ex] == ["human", "ai", "tool", "ai"] for ex in exchanges(messages)
        )
        assert len(exchanges(messages)) <= 3
    for call in model.calls:
        assert_valid_model_input(call)
    archived = StoreArchive(store).read("t")
    assert archived and isinstance(archived[0], HumanMessage)
    assert_tool_rounds_whole(archived)
    whole = [m.id for m in archived] + [m.id for m in messages]
    assert len(whole) == len(set(whole)) == 12 * 4  # nothing lost, nothing duplicated
    assert messages[-1].content == "The tool said: 111"


def test_a_turn_in_the_middle_of_its_tool_loop_is_not_trimmed() -> None:
    """Trim runs only at a turn's start, so a long tool loop keeps its own exchange whole."""

    def three_rounds(messages: Sequence[BaseMessage]) -> AIMessage:
        done = sum(
            1 for m in messages[messages.index(latest_human(messages)) :] if m.type == "tool"
        )
        if done < 3:
            return AIMessage(content="", tool_calls=[tool_call("add", {"a": done, "b": 1})])
        return AIMessage(content="done")

    model = ToolCallingFake(script=three_rounds)
    graph = build_graph(chat_model=model, tools=[add], checkpointer=InMemorySaver())
    for turn in range(3):
        messages = run_turn(graph, "t", f"turn {turn}", max_turns=1)
        assert [m.type for m in messages] == ["human"] + ["ai", "tool"] * 3 + ["ai"]
    assert [m.type for m in chat_calls(model.calls)[-1]] == ["system", "human"] + ["ai", "tool"] * 3


def latest_human(messages: Sequence[BaseMessage]) -> BaseMessage:
    return next(m for m in reversed(messages) if isinstance(m, HumanMessage))


# --- a model failure inside the loop ----------------------------------------------------------


def fails_after_the_tool(messages: Sequence[BaseMessage]) -> AIMessage:
    if isinstance(messages[-1], ToolMessage):
        raise ConnectionError("the model went away")
    return AIMessage(content="", tool_calls=[tool_call("add", {"a": 1, "b": 2})])


def test_a_model_failure_after_a_tool_ran_rolls_the_whole_turn_back() -> None:
    bot = Chatbot(chat_model=ToolCallingFake(script=call_then_answer("add", numbers)), tools=[add])
    bot.say("Add 1 and 2")
    before = bot.graph.get_state(bot.config).values["messages"]
    failing = Chatbot(
        chat_model=ToolCallingFake(script=fails_after_the_tool),
        tools=[add],
        thread_id=bot.thread_id,
        memory=bot.memory,
    )
    with pytest.raises(Exception, match="went away"):
        failing.say("Add 3 and 4")
    after = bot.graph.get_state(bot.config).values["messages"]
    assert [m.id for m in after] == [m.id for m in before]


async def test_async_a_model_failure_after_a_tool_ran_rolls_the_whole_turn_back() -> None:
    bot = Chatbot(chat_model=ToolCallingFake(script=fails_after_the_tool), tools=[add])
    with pytest.raises(Exception, match="went away"):
        await bot.asay("Add 3 and 4")
    state = await bot.graph.aget_state(bot.config)
    assert state.values.get("messages", []) == []
