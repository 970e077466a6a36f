"""Conversations on the real embedded model: streaming, usage, memory, concurrency, broken turns."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot, Context, build_graph
from agent.errors import ContextOverflowError, MessageTooLargeError
from agent.models.embedded import EmbeddedServer
from agent.models.llamacpp.sampling import Repetition

pytestmark = pytest.mark.integration


def stored(bot: Chatbot) -> list[BaseMessage]:
    """The thread's stored messages (the window, no system prompt)."""
    return list(bot.graph.get_state(bot.config).values.get("messages", []))


def signature(messages: list[BaseMessage]) -> list[tuple[str, str, Any]]:
    """What must not change when a turn fails: ids, types and texts."""
    return [(str(m.id), m.type, m.text) for m in messages]


def test_chatbot_stream_yields_deltas_while_the_reply_is_being_generated(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    bot = Chatbot(**short_replies)
    deltas: list[str] = []
    saved_at_first_delta: list[BaseMessage] | None = None
    for delta in bot.stream("Tell me a short story about a cat."):
        if saved_at_first_delta is None:
            saved_at_first_delta = stored(bot)
        deltas.append(delta)
    assert len(deltas) >= 5
    assert saved_at_first_delta is not None
    assert not any(isinstance(m, AIMessage) for m in saved_at_first_delta)
    reply = stored(bot)[-1]
    assert isinstance(reply, AIMessage)
    assert reply.text == "".join(deltas)
    assert not reply.response_metadata.get("interrupted")


def test_graph_messages_mode_streams_chunks_from_call_model_and_saves_usage(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t-stream"}}
    chunks = [
        chunk
        for chunk, meta in graph.stream(
            {"messages": [HumanMessage("Name three colors.")]},
            config,
            context=Context(**short_replies),
            stream_mode="messages",
        )
        if meta["langgraph_node"] == "call_model"
    ]
    assert len(chunks) >= 3
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    reply = graph.get_state(config).values["messages"][-1]
    assert isinstance(reply, AIMessage)
    assert reply.text == "".join(chunk.text for chunk in chunks)
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 10
    assert 0 < usage["output_tokens"] <= short_replies["max_reply_tokens"]


def test_the_server_receives_the_earlier_turns(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    bot = Chatbot(**{**short_replies, "max_reply_tokens": 12})
    usages = []
    for text in ("My name is Ada.", "I like tea.", "What is my name?"):
        bot.say(text)
        reply = stored(bot)[-1]
        assert reply.usage_metadata is not None
        usages.append(reply.usage_metadata)
    for before, after in zip(usages, usages[1:], strict=False):
        # the next prompt holds the previous prompt, its reply, and the new message
        assert after["input_tokens"] > before["input_tokens"] + before["output_tokens"]
    assert len(stored(bot)) == 6


def test_concurrent_threads_share_one_server_and_keep_their_own_history(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    names = ["Ada", "Grace", "Linus", "Guido"]
    bots = {name: Chatbot(**{**short_replies, "max_reply_tokens": 12}) for name in names}
    errors: list[BaseException] = []

    def talk(name: str) -> None:
        try:
            bots[name].say(f"Hello, I am {name}. Greet me by name.")
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=talk, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for name, bot in bots.items():
        messages = stored(bot)
        assert [m.type for m in messages] == ["human", "ai"]
        assert name in messages[0].text
        assert all(other not in messages[0].text for other in names if other != name)
        assert messages[1].text.strip()
    assert len({bot.thread_id for bot in bots.values()}) == 4


def test_a_consumer_that_stops_early_leaves_an_interrupted_reply_and_the_next_turn_works(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    bot = Chatbot(**short_replies)
    stream = bot.stream("Count from one to twenty in words.")
    seen = [next(stream), next(stream)]
    stream.close()
    messages = stored(bot)
    assert [m.type for m in messages] == ["human", "ai"]
    assert messages[1].text == "".join(seen)
    assert messages[1].response_metadata["interrupted"] is True
    assert bot.say("Thanks. Say OK.").strip()
    assert [m.type for m in stored(bot)] == ["human", "ai", "human", "ai"]


def test_a_failed_turn_leaves_the_history_exactly_as_it_was(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    # the embedded backend's window never lets this through, so a model handed in (no budget)
    # sends it to the real server, which refuses it
    model = embedded_server.endpoint.chat_model("smollm2", 0.0, 24, Repetition())
    bot = Chatbot(chat_model=model, max_tokens=50_000)
    bot.say("Hi, I am Ada.")
    before = signature(stored(bot))
    too_long = "lorem ipsum " * 3000  # far more than one slot's context
    with pytest.raises(ContextOverflowError) as caught:
        bot.say(too_long)
    assert "embedded llama.cpp" in str(caught.value)
    assert "AGENT_CONTEXT_SIZE" in str(caught.value)
    assert signature(stored(bot)) == before
    assert bot.say("Say OK.").strip()


def test_the_window_counts_with_the_servers_tokenizer_and_caches_it(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    endpoint = embedded_server.endpoint
    text = "Counting tokens offline, exactly."
    content_tokens = endpoint.count_text(text)
    assert (
        endpoint.count_messages([HumanMessage(text)]) == content_tokens + 5
    )  # content + ChatML framing
    bot = Chatbot(**short_replies, max_tokens=1000)
    misses = endpoint.count_text.cache_info().misses
    bot.say("Hello there.")
    assert endpoint.count_text.cache_info().misses > misses  # trim asked the server
    hits = endpoint.count_text.cache_info().hits
    bot.say("And again.")
    assert endpoint.count_text.cache_info().hits > hits  # the earlier exchange came from cache


def test_by_default_the_window_fits_the_embedded_slot_and_long_chats_keep_working(
    embedded_server: EmbeddedServer, short_replies: dict[str, Any]
) -> None:
    bot = Chatbot(**short_replies)  # no max_tokens: the budget follows the slot's context
    paragraph = "The quick brown fox jumps over the lazy dog near the river bank. " * 25
    for turn in range(6):  # ~6 x 330 tokens: more than one 2048-token slot holds
        assert bot.say(f"Turn {turn}: {paragraph} Reply with one word.").strip()
    state = bot.graph.get_state(bot.config).values
    assert state["archived"] > 0  # old exchanges were evicted (and archived), not overflowed
    assert embedded_server.endpoint.count_messages(bot.history()) <= (
        embedded_server.endpoint.slot_context()
    )
    with pytest.raises(MessageTooLargeError):
        bot.say("lorem ipsum " * 3000)  # bigger than the whole budget: refused before sending
