"""The sliding window's rules, example by example and as properties over any history."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately

from agent.errors import MessageTooLargeError
from agent.window import (
    exchanges,
    exchanges_to_keep,
    invalid_messages,
    plan_window,
    valid_messages,
)


def human(text: str) -> HumanMessage:
    return HumanMessage(content=text, id=f"h-{text}")


def ai(text: str, calls: tuple[str, ...] = ()) -> AIMessage:
    return AIMessage(
        content=text,
        id=f"a-{text}",
        tool_calls=[{"name": "lookup", "args": {}, "id": c, "type": "tool_call"} for c in calls],
    )


def tool(call_id: str) -> ToolMessage:
    return ToolMessage(content=f"result {call_id}", tool_call_id=call_id, id=f"t-{call_id}")


def conversation(turns: int) -> list[BaseMessage]:
    history: list[BaseMessage] = []
    for n in range(1, turns + 1):
        history += [human(f"q{n}"), ai(f"r{n}")]
    return history


def count_messages(messages: list[BaseMessage]) -> int:
    return 10 * len(messages)


def ids(messages: list[BaseMessage]) -> list[str | None]:
    return [m.id for m in messages]


# --- grouping and validity -------------------------------------------------------------------


def test_exchanges_start_on_user_messages_and_keep_tool_rounds_whole() -> None:
    history = [human("q1"), ai("call", ("c1",)), tool("c1"), ai("r1"), human("q2")]
    assert [ids(group) for group in exchanges(history)] == [
        ["h-q1", "a-call", "t-c1", "a-r1"],
        ["h-q2"],
    ]


def test_leading_assistant_and_tool_messages_are_invalid() -> None:
    history = [ai("orphan"), tool("c9"), human("q1"), ai("r1")]
    assert ids(invalid_messages(history, turn_pending=False)) == ["a-orphan", "t-c9"]


def test_stored_system_messages_are_invalid_anywhere() -> None:
    history = [SystemMessage("old", id="s1"), human("q1"), SystemMessage("mid", id="s2"), ai("r1")]
    assert ids(invalid_messages(history, turn_pending=False)) == ["s1", "s2"]


def test_unanswered_user_message_from_a_failed_turn_is_invalid() -> None:
    history = [human("q1"), ai("r1"), human("lost"), human("q2")]
    assert ids(invalid_messages(history, turn_pending=True)) == ["h-lost"]


def test_trailing_user_message_is_valid_only_while_its_turn_is_pending() -> None:
    history = [human("q1"), ai("r1"), human("q2")]
    assert invalid_messages(history, turn_pending=True) == []
    assert ids(invalid_messages(history, turn_pending=False)) == ["h-q2"]


def test_tool_call_without_all_results_is_dropped_with_its_partial_results() -> None:
    history = [human("q1"), ai("call", ("c1", "c2")), tool("c1"), human("q2")]
    assert ids(invalid_messages(history, turn_pending=True)) == ["h-q1", "a-call", "t-c1"]


def test_tool_result_without_a_matching_call_is_dropped() -> None:
    history = [human("q1"), tool("stray"), ai("r1")]
    assert ids(invalid_messages(history, turn_pending=False)) == ["t-stray"]


def test_complete_tool_round_is_valid() -> None:
    history = [human("q1"), ai("call", ("c1", "c2")), tool("c2"), tool("c1"), ai("r1")]
    assert invalid_messages(history, turn_pending=False) == []


def test_valid_messages_removes_exactly_the_invalid_ones() -> None:
    history = [ai("orphan"), human("q1"), ai("r1"), human("lost"), human("q2")]
    assert ids(valid_messages(history, turn_pending=True)) == ["h-q1", "a-r1", "h-q2"]


# --- block eviction --------------------------------------------------------------------------


def test_no_eviction_below_the_budget() -> None:
    assert (
        exchanges_to_keep([5] * 20, fixed_tokens=0, max_turns=20, max_tokens=None, low_water=0.6)
        == 20
    )


def test_overflow_by_turns_evicts_down_to_the_low_water_mark() -> None:
    kept = exchanges_to_keep([5] * 21, fixed_tokens=0, max_turns=20, max_tokens=None, low_water=0.6)
    assert kept == 12


def test_overflow_by_tokens_evicts_down_to_the_low_water_mark() -> None:
    kept = exchanges_to_keep(
        [10] * 10, fixed_tokens=20, max_turns=100, max_tokens=100, low_water=0.5
    )
    assert kept == 3  # 20 fixed + 3 * 10 = 50 = 0.5 * 100


def test_the_current_exchange_is_always_kept() -> None:
    kept = exchanges_to_keep(
        [10, 10, 90], fixed_tokens=5, max_turns=10, max_tokens=100, low_water=0.5
    )
    assert kept == 1


def test_an_exchange_bigger_than_the_whole_budget_is_a_clear_error() -> None:
    with pytest.raises(MessageTooLargeError, match="max_tokens"):
        exchanges_to_keep([10, 200], fixed_tokens=5, max_turns=10, max_tokens=100, low_water=0.6)


def test_low_water_of_one_slides_one_exchange_per_turn() -> None:
    kept = exchanges_to_keep([5] * 21, fixed_tokens=0, max_turns=20, max_tokens=None, low_water=1.0)
    assert kept == 20


def test_plan_window_evicts_whole_old_exchanges_and_drops_invalid_ones() -> None:
    history = [ai("orphan"), *conversation(3), human("q4")]
    plan = plan_window(history, max_turns=2, count_tokens=count_messages, low_water=0.5)
    assert ids(plan.drop) == ["a-orphan"]
    assert ids(plan.evict) == ["h-q1", "a-r1", "h-q2", "a-r2", "h-q3", "a-r3"]
    assert ids(plan.keep) == ["h-q4"]


def test_plan_window_never_splits_a_tool_call_from_its_results() -> None:
    history = [
        human("q1"),
        ai("call", ("c1",)),
        tool("c1"),
        ai("r1"),
        human("q2"),
        ai("call2", ("c2", "c3")),
        tool("c2"),
        tool("c3"),
        ai("r2"),
        human("q3"),
    ]
    plan = plan_window(history, max_turns=2, count_tokens=count_messages, low_water=0.6)
    assert ids(plan.keep) == ["h-q3"]
    plan = plan_window(history, max_turns=3, count_tokens=count_messages, low_water=0.6)
    assert ids(plan.keep)[0] == "h-q1" and len(plan.keep) == len(history)


def test_block_eviction_keeps_the_prefix_identical_until_the_next_overflow() -> None:
    """Simulate 40 turns: the window's first message changes only at block evictions."""
    history: list[BaseMessage] = []
    firsts: list[str | None] = []
    for n in range(1, 41):
        history.append(human(f"q{n}"))
        plan = plan_window(history, max_turns=10, count_tokens=count_messages, low_water=0.6)
        history = [*plan.keep, ai(f"r{n}")]
        firsts.append(history[0].id)
    changes = sum(1 for a, b in zip(firsts, firsts[1:], strict=False) if a != b)
    # overflow at turn 11 evicts to 6 exchanges; the window refills for 5 turns: turns 11, 16,
    # 21, 26, 31 and 36 change the prefix, the other 34 turns reuse it byte for byte
    assert changes == 6
    assert len(set(firsts[10:15])) == 1


# --- properties ------------------------------------------------------------------------------

kinds = st.sampled_from(["human", "ai", "ai_call", "tool", "system"])


@st.composite
def histories(draw: st.DrawFn) -> list[BaseMessage]:
    """Arbitrary histories, including broken ones (orphan tools, stray system messages...)."""
    messages: list[BaseMessage] = []
    open_calls: list[str] = []
    for n, kind in enumerate(draw(st.lists(kinds, max_size=40))):
        text = "x" * draw(st.integers(min_value=0, max_value=60))
        if kind == "human":
            messages.append(HumanMessage(content=text or "hi", id=f"m{n}"))
        elif kind == "ai":
            messages.append(AIMessage(content=text, id=f"m{n}"))
        elif kind == "ai_call":
            calls = [f"c{n}-{k}" for k in range(draw(st.integers(1, 3)))]
            open_calls += calls
            messages.append(
                AIMessage(
                    content="",
                    id=f"m{n}",
                    tool_calls=[
                        {"name": "t", "args": {}, "id": c, "type": "tool_call"} for c in calls
                    ],
                )
            )
        elif kind == "tool":
            call = (
                draw(st.sampled_from(open_calls)) if open_calls and draw(st.booleans()) else "nope"
            )
            messages.append(ToolMessage(content=text, tool_call_id=call, id=f"m{n}"))
        else:
            messages.append(SystemMessage(content=text, id=f"m{n}"))
    messages.append(HumanMessage(content="now", id="current"))
    return messages


def assert_valid_window(window: list[BaseMessage]) -> None:
    assert window, "the current message is always kept"
    assert isinstance(window[0], HumanMessage)
    assert not any(isinstance(m, SystemMessage) for m in window)
    calls: set[str] = set()
    for message in window:
        if isinstance(message, AIMessage):
            calls |= {c["id"] for c in message.tool_calls if c["id"]}
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in calls, "tool result without its call"
    results = {m.tool_call_id for m in window if isinstance(m, ToolMessage)}
    assert calls <= results, "tool call without its results"


@settings(max_examples=300, deadline=None)
@given(
    history=histories(),
    max_turns=st.integers(min_value=1, max_value=8),
    max_tokens=st.one_of(st.none(), st.integers(min_value=40, max_value=400)),
    low_water=st.floats(min_value=0.1, max_value=1.0),
)
def test_any_history_gives_a_valid_window_within_budget(
    history: list[BaseMessage], max_turns: int, max_tokens: int | None, low_water: float
) -> None:
    fixed = 12
    try:
        plan = plan_window(
            history,
            max_turns=max_turns,
            max_tokens=max_tokens,
            low_water=low_water,
            count_tokens=count_tokens_approximately,
            fixed_tokens=fixed,
        )
    except MessageTooLargeError as error:
        assert max_tokens is not None and error.tokens > max_tokens
        return
    assert_valid_window(plan.keep)
    assert plan.keep[-1].id == "current"
    groups = exchanges(plan.keep)
    assert len(groups) <= max_turns
    if max_tokens is not None and len(groups) > 1:
        assert fixed + count_tokens_approximately(plan.keep) <= max_tokens
    # nothing is lost without being accounted for: keep + evict + drop is the whole history
    assert sorted(ids(plan.keep + plan.evict + plan.drop)) == sorted(ids(history))
    if plan.evict:
        assert_valid_window(plan.evict + plan.keep)
