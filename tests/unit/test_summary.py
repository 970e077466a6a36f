"""The running summary (issue 14): pure rules, then the graph and the Chatbot with fake models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot, build_graph
from agent.models.replies import LENGTH_STOPS
from agent.summary import (
    SUMMARY_HEADER,
    complete_sentences,
    fold,
    plan_compaction,
    render_messages,
    text_tokens,
    whole_sentences,
)
from tests.fakes import (
    FakeChat,
    ToolCallingFake,
    call_then_answer,
    chat_calls,
    role_of,
    with_memory_jobs,
)


def exchange(n: int, words: int = 3) -> list[BaseMessage]:
    return [HumanMessage(f"q{n} " + "w " * words, id=f"h{n}"), AIMessage(f"a{n}", id=f"a{n}")]


def history(count: int, words: int = 3) -> list[BaseMessage]:
    return [m for n in range(count) for m in exchange(n, words)]


def system_text(call: Sequence[BaseMessage]) -> str:
    assert isinstance(call[0], SystemMessage)
    return str(call[0].text)


# --- pure rules ----------------------------------------------------------------------------


def test_tool_rounds_are_rendered_as_what_was_learned_not_replayed() -> None:
    call = AIMessage(
        "",
        tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "c1", "type": "tool_call"}],
    )
    text = render_messages(
        [
            HumanMessage("Weather in Oslo?"),
            call,
            ToolMessage("rain, 8 C", tool_call_id="c1"),
            AIMessage("It rains in Oslo."),
        ]
    )
    assert text.splitlines() == [
        "User: Weather in Oslo?",
        'Assistant used tool weather with {"city": "Oslo"}',
        "Tool weather returned: rain, 8 C",
        "Assistant: It rains in Oslo.",
    ]


def test_a_huge_message_is_shortened_for_the_summarizer_and_says_so() -> None:
    text = render_messages([HumanMessage("x" * 50_000)])
    assert len(text) < 2_100 and "48000 more characters" in text


def test_an_interrupted_reply_is_marked_for_the_summarizer() -> None:
    reply = AIMessage("Once upon", response_metadata={"interrupted": True})
    assert render_messages([reply]) == "Assistant (interrupted): Once upon"


def test_whole_sentences_never_cuts_one_in_the_middle() -> None:
    text = "Priya is a nurse. She lives in Lyon. She is vegetarian and likes long walks."
    for budget in range(1, 40):
        kept = whole_sentences(text, budget, count_tokens_approximately)
        assert text.startswith(kept)
        assert kept == "" or kept.endswith(".")
        assert kept == "" or text_tokens(kept, count_tokens_approximately) <= budget
    assert whole_sentences(text, 1000, count_tokens_approximately) == text


def test_a_reply_cut_by_the_length_limit_loses_its_unfinished_sentence() -> None:
    assert complete_sentences("Priya is a nurse. She lives in", cut=True) == "Priya is a nurse."
    assert complete_sentences("Priya is a nurse. She lives in", cut=False).endswith("lives in")
    assert complete_sentences("Priya is a nurse.", cut=True) == "Priya is a nurse."


def test_compaction_takes_the_decision_trim_would_take_at_the_next_turn() -> None:
    plan = plan_compaction(
        history(5),
        max_turns=5,
        count_tokens=count_tokens_approximately,
        max_tokens=None,
        low_water=0.6,
        fixed_tokens=0,
    )
    # The next turn would make 6 > 5 and keep 3 (itself + 2): exchanges 0-2 go now.
    assert [m.id for m in plan] == ["h0", "a0", "h1", "a1", "h2", "a2"]
    assert not plan_compaction(
        history(4),
        max_turns=5,
        count_tokens=count_tokens_approximately,
        max_tokens=None,
        low_water=0.6,
        fixed_tokens=0,
    )


def test_compaction_keeps_the_turns_own_exchange_even_with_a_tiny_window() -> None:
    plan = plan_compaction(
        history(2),
        max_turns=1,
        count_tokens=count_tokens_approximately,
        max_tokens=None,
        low_water=0.6,
        fixed_tokens=0,
    )
    assert [m.id for m in plan] == ["h0", "a0"]


def test_compaction_leaves_room_for_a_next_exchange_as_long_as_the_last() -> None:
    messages = history(6, words=40)
    count = count_tokens_approximately
    per_exchange = count(exchange(0, words=40))
    budget = 6 * per_exchange + 10  # six fit, a seventh would not
    plan = plan_compaction(
        messages, max_turns=50, count_tokens=count, max_tokens=budget, low_water=0.6, fixed_tokens=0
    )
    kept = len(messages) - len(plan)
    assert plan and (kept // 2 + 1) * per_exchange <= budget * 0.6


def summarizer(*replies: str) -> FakeChat:
    texts = iter(replies)
    return FakeChat(reply=lambda messages: next(texts))


def test_fold_condenses_a_summary_that_outgrew_its_budget() -> None:
    long = " ".join(f"Fact number {n} is about the user." for n in range(40))
    model = summarizer(long, "The user has forty facts.")
    folded = fold(model, "", history(1), max_tokens=30, count=count_tokens_approximately)
    assert folded == "The user has forty facts."
    assert [role_of(call) for call in model.calls] == ["summarize", "condense"]


def test_fold_keeps_whole_sentences_when_condensing_is_not_enough() -> None:
    long = " ".join(f"Fact number {n} is about the user." for n in range(40))
    model = summarizer(long, long)
    folded = fold(model, "", history(1), max_tokens=30, count=count_tokens_approximately)
    assert folded.startswith("Fact number 0 is about the user.") and folded.endswith(".")
    assert text_tokens(folded, count_tokens_approximately) <= 30


@pytest.mark.parametrize("stop", LENGTH_STOPS, ids=[f"{k}={v}" for k, v in LENGTH_STOPS])
def test_a_summary_cut_by_any_providers_length_limit_loses_its_unfinished_sentence(
    stop: tuple[str, str],
) -> None:
    key, value = stop
    model = FakeChat(reply=lambda _: "Priya is a nurse. She lives in", finish={key: value})
    folded = fold(model, "", history(1), max_tokens=30, count=count_tokens_approximately)
    assert folded == "Priya is a nurse."


def test_fold_refuses_an_empty_summary() -> None:
    with pytest.raises(ValueError, match="no complete sentence"):
        fold(summarizer("   "), "old", history(1), max_tokens=30, count=count_tokens_approximately)


# --- in the graph ---------------------------------------------------------------------------


def memory_bot(model: FakeChat | None = None, **settings: Any) -> tuple[Chatbot, FakeChat]:
    model = model or FakeChat(reply=with_memory_jobs())
    return Chatbot(chat_model=model, checkpointer=InMemorySaver(), **settings), model


def test_the_tutorial_name_is_remembered_after_the_window_evicted_it() -> None:
    bot, model = memory_bot(max_turns=2)
    bot.say("Hi, my name is Priya.")
    bot.say("I like hiking.")
    bot.say("What's a good trail snack?")
    bot.say("What is my name?")
    last = chat_calls(model.calls)[-1]
    assert not any("Priya" in str(m.text) for m in last[1:])  # gone from the window...
    assert SUMMARY_HEADER in system_text(last) and "Priya" in system_text(last)  # ...not forgotten
    assert "Priya" in bot.summary() and "Priya" in bot.history()[0].text


def test_the_summary_sits_right_after_the_persona_in_the_one_system_message() -> None:
    bot, model = memory_bot(persona="tutor", max_turns=2)
    for text in ("one", "two", "three"):
        bot.say(text)
    system = system_text(chat_calls(model.calls)[-1])
    persona, _, rest = system.partition("\n\n" + SUMMARY_HEADER)
    assert "Python tutor" in persona and rest.strip() == "The user said: one."
    assert bot.history()[0].text.endswith(SUMMARY_HEADER + "\n" + bot.summary())
    assert all([m.type for m in call].count("system") == 1 for call in chat_calls(model.calls))


def test_the_prompt_prefix_changes_once_per_eviction_and_is_identical_in_between() -> None:
    bot, model = memory_bot(max_turns=5, low_water=0.6)
    for n in range(16):
        bot.say(f"message {n}")
    bot.wait()
    calls = chat_calls(model.calls)
    changes = [
        n
        for n in range(1, len(calls))
        if calls[n][: len(calls[n - 1])] != calls[n - 1]  # not an extension of the last prompt
    ]
    folds = [call for call in model.calls if role_of(call) == "summarize"]
    # Turn 5 ends by evicting 3 exchanges and folding them; turn 6 sees the new prefix. The
    # prefix is then stable until the window fills again (turns 6-8 extend each other).
    assert changes == [5, 8, 11, 14]
    assert len(folds) == len(changes)
    assert calls[6][: len(calls[5])] == calls[5] and calls[7][: len(calls[6])] == calls[6]


def test_no_turn_waits_for_the_summary_before_its_model_call() -> None:
    bot, model = memory_bot(max_turns=2)
    for n in range(6):
        bot.say(f"message {n}")
    bot.wait()
    roles = [role_of(call) for call in model.calls]
    # Every summarizer call comes right after a conversation call (the reply it follows),
    # never between a turn's start and its model call: chat, summarize, chat, summarize...
    assert roles[0] == "chat"
    pairs = zip(roles, roles[1:], strict=False)
    assert all(prev == "chat" for prev, role in pairs if role == "summarize")


class FailingSummarizer(FakeChat):
    """Chats normally; its summarizer fails while `broken` is set."""

    broken: bool = True

    def _record(self, messages: list[BaseMessage]) -> str:
        if role_of(messages) == "summarize" and self.broken:
            raise ConnectionError("summarizer is down")
        return super()._record(messages)


def test_a_failed_summary_leaves_the_turn_and_the_archive_intact_and_is_retried() -> None:
    model = FailingSummarizer(reply=with_memory_jobs())
    bot, _ = memory_bot(model, max_turns=2)
    replies = [bot.say(f"My name is N{n}.") for n in range(3)]
    assert replies[-1] == "You said: My name is N2."
    bot.wait()
    values = bot.graph.get_state(bot.config).values
    assert bot.summary() == "" and values["summarized"] == 0 and values["archived"] == 4
    assert [m.text for m in bot.transcript() if m.type == "human"] == [
        f"My name is N{n}." for n in range(3)
    ]
    model.broken = False
    bot.say("My name is N3.")  # the next eviction folds the backlog too
    assert all(f"N{n}" in bot.summary() for n in range(3))
    values = bot.graph.get_state(bot.config).values
    assert values["summarized"] == values["archived"] == 6


@pytest.mark.parametrize("budget", [24, 60])
def test_the_summary_budget_holds_over_a_long_conversation(budget: int) -> None:
    bot, model = memory_bot(max_turns=2, summary_tokens=budget)
    for n in range(30):
        bot.say(f"My favourite number is {n} and I mention it for the record.")
        summary = bot.summary()
        assert text_tokens(summary, count_tokens_approximately) <= budget
        assert summary == "" or summary.endswith(".")
    assert any(role_of(call) == "condense" for call in model.calls)


def test_summary_off_is_the_plain_window_and_never_calls_the_summarizer() -> None:
    bot, model = memory_bot(max_turns=2, summary=False)
    for n in range(6):
        bot.say(f"message {n}")
    assert {role_of(call) for call in model.calls} == {"chat"}
    assert bot.summary() == ""


def test_the_summary_is_in_the_state_for_clients_and_in_exports() -> None:
    bot, _ = memory_bot(max_turns=2)
    for text in ("My name is Priya.", "two", "three"):
        bot.say(text)
    assert "Priya" in bot.graph.get_state(bot.config).values["summary"]
    assert '"summary": "The user said: My name is Priya.' in bot.export("json")
    assert "## Summary of what the window evicted" in bot.export("markdown")


def test_summarizer_tokens_never_reach_a_messages_stream() -> None:
    graph = build_graph(chat_model=FakeChat(reply=with_memory_jobs()), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    nodes = set()
    for n in range(4):
        events = graph.stream(
            {"messages": [HumanMessage(f"message {n}")]},
            config,
            context={"max_turns": 2},
            stream_mode="messages",
        )
        nodes |= {meta["langgraph_node"] for chunk, meta in events if chunk.text}
    assert nodes == {"call_model"}
    assert graph.get_state(config).values["summary"]


def test_a_skipped_compaction_is_caught_up_by_the_next_turn() -> None:
    """A process killed after saving the reply but before `compact`: trim evicts instead."""
    model = FakeChat(reply=with_memory_jobs())
    graph = build_graph(chat_model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    for n in range(3):  # every run stops before its after-reply steps, which never run
        graph.invoke(
            {"messages": [HumanMessage(f"My name is N{n}.")]},
            config,
            context={"max_turns": 2},
            interrupt_before=["compact"],
        )
    values = graph.get_state(config).values
    # Turn 3's trim evicted exchanges 0 and 1 in front of its model call (nobody had).
    assert values["archived"] == 4 and values["summary_due"] and not values.get("summary")
    graph.invoke({"messages": [HumanMessage("hello")]}, config, context={"max_turns": 2})
    values = graph.get_state(config).values
    assert all(f"N{n}" in values["summary"] for n in range(3))
    assert values["summarized"] == values["archived"] == 6


def test_tool_rounds_reach_the_summarizer_as_text() -> None:
    def weather(city: str) -> str:
        """Weather for a city."""
        return f"rain in {city}"

    script = call_then_answer("weather", lambda text: {"city": "Oslo"})

    def respond(messages: Sequence[BaseMessage]) -> AIMessage:
        if role_of(messages) == "summarize":
            return AIMessage("The user asked about the weather; it rains in Oslo.")
        return script(messages)

    model = ToolCallingFake(script=respond)
    bot = Chatbot(chat_model=model, tools=[weather], checkpointer=InMemorySaver(), max_turns=1)
    bot.say("Weather?")
    bot.say("Thanks")
    bot.wait()
    [prompt] = [call for call in model.calls if role_of(call) == "summarize"]
    assert not any(isinstance(m, ToolMessage) or getattr(m, "tool_calls", None) for m in prompt)
    assert "Tool weather returned: rain in Oslo" in str(prompt[-1].text)
    assert "rains in Oslo" in bot.summary()


async def test_the_async_api_folds_and_recalls_the_same_way() -> None:
    bot, model = memory_bot(max_turns=2)
    for text in ("Hi, my name is Priya.", "I like hiking.", "Snack?", "What is my name?"):
        await bot.asay(text)
    async with bot:
        pass  # leaving waits for the after-reply work
    assert "Priya" in system_text(chat_calls(model.calls)[-1])
    assert "Priya" in bot.summary()
