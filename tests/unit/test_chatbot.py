"""The Chatbot and graph, end to end with fake models: memory, personas, window, streaming."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot, build_graph
from agent.errors import (
    EmptyMessageError,
    MessageTooLargeError,
    MissingVariableError,
    UnknownPersonaError,
)
from tests.fakes import FakeChat, chat_calls, model_texts


def bot_with(model: FakeChat | None = None, **kwargs: object) -> tuple[Chatbot, FakeChat]:
    model = model or FakeChat()
    return Chatbot(chat_model=model, **kwargs), model  # type: ignore[arg-type]


def humans(call: Sequence[BaseMessage]) -> list[str]:
    return [str(m.text) for m in call if isinstance(m, HumanMessage)]


# --- memory: the tutorial's conversations ----------------------------------------------------


def test_tutorial_three_turn_conversation_reaches_the_model_whole() -> None:
    bot, model = bot_with(persona="tutor")
    bot.say("My favourite language is Python.")
    bot.say("Suggest a small project idea for me.")
    bot.say("How long would that take a beginner?")
    last = model_texts(model.calls[-1])
    assert last[0][0] == "system" and "Python tutor" in last[0][1]
    assert [kind for kind, _ in last] == ["system", "human", "ai", "human", "ai", "human"]
    assert last[1][1] == "My favourite language is Python."
    assert last[2][1] == "You said: My favourite language is Python."
    assert last[-1][1] == "How long would that take a beginner?"


def test_cooking_assistant_follow_up_sees_the_dish() -> None:
    bot, model = bot_with(persona="cooking_assistant")
    bot.say("How do I make a chicken stir-fry?")
    bot.say("What can I substitute for the main protein?")
    sent = model_texts(model.calls[-1])
    assert "cooking assistant" in sent[0][1]
    assert humans(model.calls[-1]) == [
        "How do I make a chicken stir-fry?",
        "What can I substitute for the main protein?",
    ]


def test_plain_sliding_window_forgets_the_name_by_turn_four() -> None:
    bot, model = bot_with(max_turns=2, summary=False)
    bot.say("Hi, my name is Priya.")
    bot.say("I like hiking.")
    bot.say("What's a good trail snack?")
    bot.say("What is my name?")
    assert not any("Priya" in text for _, text in model_texts(model.calls[3]))
    assert any("Priya" in text for _, text in model_texts(model.calls[1]))


def test_block_eviction_keeps_the_model_input_prefix_identical() -> None:
    bot, model = bot_with(max_turns=5, low_water=0.6, summary=False)
    for n in range(12):
        bot.say(f"message {n}")
    prefixes = [model_texts(call)[:3] for call in model.calls]
    # turn 6 overflows (6 > 5) and evicts to 3 exchanges; turns 6-8 then share their prefix
    assert prefixes[5] == prefixes[6] == prefixes[7]
    assert humans(model.calls[5])[0] == "message 3"
    for earlier, later in zip(model.calls[5:7], model.calls[6:8], strict=True):
        assert later[: len(earlier)] == earlier  # each prompt extends the previous one


# --- the tutorial's four mistakes, impossible by construction --------------------------------


def test_the_reply_is_always_saved() -> None:
    bot, _ = bot_with()
    reply = bot.say("Remember me")
    assert [(m.type, m.text) for m in bot.history()[1:]] == [
        ("human", "Remember me"),
        ("ai", reply),
    ]


def test_conversations_never_share_history() -> None:
    saver, model = InMemorySaver(), FakeChat()
    alice = Chatbot(thread_id="alice", chat_model=model, checkpointer=saver)
    bob = Chatbot(thread_id="bob", chat_model=model, checkpointer=saver)
    alice.say("I am Alice")
    bob.say("I am Bob")
    assert humans(model.calls[-1]) == ["I am Bob"]
    assert "Alice" not in str([m.content for m in bob.history()])
    again = Chatbot(thread_id="alice", chat_model=model, checkpointer=saver)
    again.say("Who am I?")
    assert humans(model.calls[-1]) == ["I am Alice", "Who am I?"]


def test_the_system_message_is_first_exactly_once() -> None:
    bot, model = bot_with(persona="code_reviewer")
    for text in ("one", "two", "three"):
        bot.say(text)
    for call in model.calls:
        assert [m.type for m in call].count("system") == 1 and call[0].type == "system"
    stored = bot.graph.get_state(bot.config).values["messages"]
    assert not any(m.type == "system" for m in stored)


def test_streamed_chunks_are_accumulated_into_the_saved_reply() -> None:
    bot, _ = bot_with(FakeChat(chunk_size=3))
    pieces = list(bot.stream("stream this please"))
    assert len(pieces) > 3
    saved = bot.history()[-1]
    assert isinstance(saved, AIMessage) and saved.text == "".join(pieces)


def test_a_failing_model_rolls_the_turn_back() -> None:
    bot, _ = bot_with()
    bot.say("first")
    before = bot.history()
    bot.graph = build_graph(
        chat_model=FakeChat(fail_after_chunks=2), checkpointer=bot.graph.checkpointer
    )
    with pytest.raises(ConnectionError):
        bot.say("this one fails mid-stream")
    assert bot.history() == before


# --- personas per thread --------------------------------------------------------------------


def test_a_thread_keeps_its_persona_and_switching_is_explicit() -> None:
    saver, model = InMemorySaver(), FakeChat()
    Chatbot("travel_planner", thread_id="t", chat_model=model, checkpointer=saver).say("Trip?")
    resumed = Chatbot(thread_id="t", chat_model=model, checkpointer=saver)
    assert resumed.persona == "travel_planner"
    resumed.say("In May")
    assert "travel planner" in model_texts(model.calls[-1])[0][1]
    resumed.switch_persona("tutor")
    assert "Python tutor" in str(resumed.history()[0].content)
    resumed.say("Now teach me")
    assert "Python tutor" in model_texts(model.calls[-1])[0][1]
    assert Chatbot(thread_id="t", chat_model=model, checkpointer=saver).persona == "tutor"


def test_persona_variables_reach_the_prompt_and_stay_with_the_thread() -> None:
    saver, model = InMemorySaver(), FakeChat()
    Chatbot(
        "tutor", "v", persona_vars={"user_name": "Ada"}, chat_model=model, checkpointer=saver
    ).say("hi")
    Chatbot(thread_id="v", chat_model=model, checkpointer=saver).say("again")
    assert "talking with Ada" in model_texts(model.calls[-1])[0][1]


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_messages_are_rejected_and_change_nothing(text: str) -> None:
    bot, model = bot_with()
    bot.say("hello")
    before = bot.graph.get_state(bot.config).values
    with pytest.raises(EmptyMessageError, match="empty"):
        bot.say(text)
    with pytest.raises(ValueError):
        list(bot.stream(text))
    assert bot.graph.get_state(bot.config).values == before
    assert len(model.calls) == 1


def test_unknown_persona_is_an_error_listing_the_available_ones() -> None:
    with pytest.raises(UnknownPersonaError, match="tutor"):
        Chatbot("nobody", chat_model=FakeChat())
    bot, _ = bot_with()
    with pytest.raises(UnknownPersonaError):
        bot.switch_persona("nobody")


def test_missing_template_variable_is_named(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / "host.toml").write_text('system = "Welcome {guest}."\n')
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(directory))
    with pytest.raises(MissingVariableError, match="guest"):
        Chatbot("host", chat_model=FakeChat())
    assert (
        Chatbot("host", chat_model=FakeChat(), persona_vars={"guest": "Kim"}).history()[0].content
        == "Welcome Kim."
    )


@pytest.mark.parametrize(
    "settings", [{"max_turns": 0}, {"max_turns": -3}, {"max_tokens": -1}, {"low_water": 0}]
)
def test_impossible_window_settings_are_errors(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Chatbot(chat_model=FakeChat(), **settings)  # type: ignore[arg-type]


def test_a_message_bigger_than_the_whole_budget_is_a_clear_error() -> None:
    bot, model = bot_with(max_tokens=200)
    bot.say("short")
    before = bot.history()
    with pytest.raises(MessageTooLargeError, match="max_tokens"):
        bot.say("word " * 2000)
    assert bot.history() == before and len(model.calls) == 1
    bot.say("still works")
    assert humans(model.calls[-1]) == ["short", "still works"]


# --- tool calls in the history ---------------------------------------------------------------


def test_tool_call_and_results_are_never_split_by_the_window() -> None:
    bot, model = bot_with(max_turns=2)
    call = AIMessage(
        content="",
        id="call",
        tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "c1", "type": "tool_call"}],
    )
    history = [
        HumanMessage("weather?", id="h1"),
        call,
        ToolMessage("rain", tool_call_id="c1", id="t1"),
        AIMessage("It rains.", id="a1"),
    ]
    bot.graph.update_state(bot.config, {"messages": history}, as_node="call_model")
    bot.say("and tomorrow?")
    sent = chat_calls(model.calls)[-1]
    assert [m.type for m in sent] == ["system", "human", "ai", "tool", "ai", "human"]
    bot.say("thanks")  # 3 exchanges > 2: the tool round leaves whole
    sent = chat_calls(model.calls)[-1]
    assert not any(isinstance(m, ToolMessage) for m in sent)
    assert sent[1].type == "human"


# --- graph level -----------------------------------------------------------------------------


def test_graph_streams_chunks_from_call_model_and_works_without_context() -> None:
    graph = build_graph(chat_model=FakeChat(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "g"}}
    events = list(graph.stream({"messages": [HumanMessage("hi")]}, config, stream_mode="messages"))
    chunks = [c for c, meta in events if meta["langgraph_node"] == "call_model"]
    assert len(chunks) > 1 and all(isinstance(c, AIMessageChunk) for c in chunks)
    state = graph.get_state(config).values
    assert state["persona"] == "assistant" and state["messages"][-1].text == "You said: hi"


def test_graph_accepts_context_as_a_dict() -> None:
    model = FakeChat()
    graph = build_graph(chat_model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "d"}}
    graph.invoke({"messages": [("user", "hi")]}, config, context={"persona": "tutor"})  # type: ignore[arg-type]
    assert "Python tutor" in model_texts(model.calls[-1])[0][1]


def test_a_failed_run_on_the_graph_heals_on_the_next_turn() -> None:
    model = FakeChat()
    graph = build_graph(chat_model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "heal"}}
    graph.invoke({"messages": [("user", "first")]}, config)
    with pytest.raises(EmptyMessageError):
        graph.invoke({"messages": [("user", "  ")]}, config)
    graph.invoke({"messages": [("user", "second")]}, config)
    assert humans(model.calls[-1]) == ["first", "second"]


def test_exported_server_graph_has_no_checkpointer_or_store() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "graphs" / "chatbot.py"
    spec = importlib.util.spec_from_file_location("server_graph", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.graph.checkpointer is None and module.graph.store is None
    assert set(module.graph.nodes) >= {"trim", "call_model"}


# --- async and concurrency -------------------------------------------------------------------


async def test_async_say_and_stream_remember_the_conversation() -> None:
    bot, model = bot_with(FakeChat(chunk_size=2))
    first = await bot.asay("async hello")
    pieces = [piece async for piece in bot.astream("async again")]
    assert first == "You said: async hello" and len(pieces) > 2
    assert humans(model.calls[-1]) == ["async hello", "async again"]
    assert bot.history()[-1].text == "".join(pieces)


async def test_fifty_concurrent_threads_through_one_checkpointer_never_cross_talk() -> None:
    saver, model = InMemorySaver(), FakeChat(delay=0.001)
    bots = [Chatbot(thread_id=f"user-{n}", chat_model=model, checkpointer=saver) for n in range(50)]

    async def converse(n: int, bot: Chatbot) -> None:
        await bot.asay(f"secret {n}")
        await bot.asay(f"secret {n} again")

    await asyncio.gather(*(converse(n, bot) for n, bot in enumerate(bots)))
    for n, bot in enumerate(bots):
        assert [str(m.text) for m in bot.history() if m.type == "human"] == [
            f"secret {n}",
            f"secret {n} again",
        ]
    for call in model.calls:
        tags = {text.split()[1] for text in humans(call)}
        assert len(tags) == 1, f"cross-talk in one model input: {humans(call)}"


def test_concurrent_threads_from_os_threads_never_cross_talk() -> None:
    saver, model = InMemorySaver(), FakeChat(delay=0.001)
    errors: list[BaseException] = []

    def converse(n: int) -> None:
        try:
            bot = Chatbot(thread_id=f"t{n}", chat_model=model, checkpointer=saver)
            bot.say(f"I am {n}")
            bot.say(f"still {n}")
            assert [m.text for m in bot.history() if m.type == "human"] == [
                f"I am {n}",
                f"still {n}",
            ]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=converse, args=(n,)) for n in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
