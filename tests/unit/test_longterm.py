"""Long-term memory (issue 14): per-user facts in the store, learned after turns, recalled later."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from agent import Chatbot, Context
from agent.memory.longterm import (
    UserMemory,
    decode_vector,
    encode_vector,
    namespace,
    parse_facts,
    topic_key,
)
from agent.memory.namespaces import label
from agent.models.replies import LENGTH_STOPS
from agent.recall import MEMORY_HEADER, memory_block, select, user_of
from agent.summary import text_tokens
from tests.fakes import FakeChat, chat_calls, role_of, with_memory_jobs

# --- parsing what an extractor says ------------------------------------------------------------


def test_facts_are_read_one_per_line() -> None:
    assert parse_facts("name: Priya\n- job: nurse\n2. Home City: Lyon.") == [
        ("name", "Priya"),
        ("job", "nurse"),
        ("home city", "Lyon."),
    ]


@pytest.mark.parametrize(
    "reply",
    [
        "NONE",
        "none.",
        "I'm glad to help, but I'm not a helpful AI. I'm here to assist with any topic.",
        "Here is what I think about the weather today and tomorrow: sunny",  # a long "topic"
        "name: " + "x" * 500,  # an over-long fact
        ": nothing before the colon",
        "diet: none",
    ],
)
def test_rambling_and_empty_replies_store_nothing(reply: str) -> None:
    assert parse_facts(reply) == []


def test_a_reply_cut_by_the_length_limit_loses_its_last_line() -> None:
    assert parse_facts("name: Priya\njob: nur", cut=True) == [("name", "Priya")]


def test_the_last_fact_on_a_topic_wins_within_one_reply() -> None:
    assert parse_facts("home city: Paris\nHOME CITY: Lyon") == [("home city", "Lyon")]


# --- the store API -----------------------------------------------------------------------------


def test_memories_live_under_the_users_own_namespace_for_any_id() -> None:
    assert namespace("priya@example.com") == ("users", label("priya@example.com"), "memories")
    store = InMemoryStore()
    UserMemory(store, "a.b", None).put("name", "Ann")
    UserMemory(store, "a%2Eb", None).put("name", "Eve")  # a different id, however it is spelt
    assert [f.text for f in UserMemory(store, "a.b", None).facts()] == ["Ann"]
    assert [f.text for f in UserMemory(store, "a%2Eb", None).facts()] == ["Eve"]


def test_put_get_forget_clear() -> None:
    facts = UserMemory(InMemoryStore(), "priya", None)
    fact = facts.put("Diet", "vegetarian", source="thread-1")
    assert (fact.key, fact.topic, fact.text, fact.line) == (
        topic_key("diet"),
        "diet",
        "vegetarian",
        "diet: vegetarian",
    )
    assert facts.get("DIET") == fact and facts.get(fact.key) == fact
    facts.put("job", "nurse")
    assert facts.forget("diet") and not facts.forget("diet")
    assert [f.topic for f in facts.facts()] == ["job"]
    assert facts.clear() == 1 and facts.facts() == []


def test_a_newer_fact_on_a_topic_replaces_the_older_one() -> None:
    facts = UserMemory(InMemoryStore(), "priya", None)
    facts.put("home city", "Paris")
    facts.put("Home City", "Lyon")
    assert [f.line for f in facts.facts()] == ["home city: Lyon"]


@pytest.mark.parametrize(
    ("topic", "text"), [("", "x"), ("a" * 41, "x"), ("name", ""), ("name", "x" * 201)]
)
def test_bad_facts_are_refused_with_a_reason(topic: str, text: str) -> None:
    with pytest.raises(ValueError, match="memory"):
        UserMemory(InMemoryStore(), "priya", None).put(topic, text)


def test_no_user_id_no_memory() -> None:
    with pytest.raises(ValueError, match="user id"):
        UserMemory(InMemoryStore(), "  ", None)


def test_items_a_client_wrote_that_are_not_memories_are_skipped() -> None:
    store = InMemoryStore()
    ns = namespace("priya")
    store.put(ns, "junk", {"something": "else"})
    store.put(ns, "huge", {"memory": "x" * 10_000})
    store.put(ns, "hand-written", {"memory": "likes tea"})
    store.put(ns, "city", {"memory": "city:   Lyon", "topic": "City"})
    found = {(f.topic, f.text, f.line) for f in UserMemory(store, "priya", None).facts()}
    assert found == {
        ("hand-written", "likes tea", "hand-written: likes tea"),
        ("city", "Lyon", "city: Lyon"),
    }


VOCABULARY = ["name", "priya", "city", "lyon", "diet", "vegetarian", "job", "nurse", "food"]


class WordEmbeddings(Embeddings):
    """Bag of words over a tiny vocabulary: enough meaning for a deterministic ranking test."""

    def _vector(self, text: str) -> list[float]:
        words = set(re.findall(r"\w+", text.lower()))
        raw = [1.0 if word in words else 0.0 for word in VOCABULARY] + [0.1]
        norm = math.sqrt(sum(x * x for x in raw))
        return [x / norm for x in raw]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def indexed_store() -> InMemoryStore:
    index: Any = {"dims": len(VOCABULARY) + 1, "embed": WordEmbeddings(), "fields": ["memory"]}
    return InMemoryStore(index=index)


@pytest.mark.parametrize(
    ("store", "embeddings", "first"),
    [
        (indexed_store(), None, "diet"),  # the store's own index
        (InMemoryStore(), WordEmbeddings(), "diet"),  # vectors the facts carry
        (InMemoryStore(), None, "job"),  # neither: the most recent first
    ],
    ids=["store-index", "own-vectors", "recency"],
)
def test_search_ranks_by_meaning_where_it_can_and_by_recency_otherwise(
    store: BaseStore, embeddings: Embeddings | None, first: str
) -> None:
    facts = UserMemory(store, "priya", embeddings)
    facts.put("diet", "vegetarian")
    facts.put("name", "Priya")
    facts.put("job", "nurse")
    found = facts.search("what food do I eat, given my diet?", limit=3)
    assert found[0].topic == first and len(found) == 3


# --- in the graph ------------------------------------------------------------------------------


def bot_for(
    user: str | None,
    store: BaseStore,
    model: FakeChat,
    saver: InMemorySaver | None = None,
    **settings: Any,
) -> Chatbot:
    return Chatbot(
        chat_model=model,
        checkpointer=saver or InMemorySaver(),
        store=store,
        user_id=user,
        **settings,
    )


def say_and_wait(bot: Chatbot, text: str) -> None:
    """One turn, including the facts learned after it (they are stored in the background)."""
    bot.say(text)
    bot.wait()


def system_of(call: Sequence[BaseMessage]) -> str:
    assert isinstance(call[0], SystemMessage)
    return str(call[0].text)


def test_a_fact_from_one_thread_is_recalled_in_the_users_next_thread() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    say_and_wait(bot_for("priya", store, model), "Hi, my name is Priya and I work as a nurse.")
    later = bot_for("priya", store, model)
    later.say("What is my name?")
    system = system_of(chat_calls(model.calls)[-1])
    assert MEMORY_HEADER in system and "- name: Priya" in system and "- job: nurse" in system
    assert [f.line for f in later.user_memory.facts()] == ["job: nurse", "name: Priya"]  # type: ignore[union-attr]


def test_another_user_never_sees_them() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    say_and_wait(bot_for("priya", store, model), "Hi, my name is Priya.")
    say_and_wait(bot_for("sam", store, model), "What is my name?")
    assert "Priya" not in system_of(chat_calls(model.calls)[-1])
    say_and_wait(bot_for(None, store, model), "What is my name?")
    assert MEMORY_HEADER not in system_of(chat_calls(model.calls)[-1])


def test_without_a_user_nothing_is_learned_and_no_extra_call_is_made() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    bot = bot_for(None, store, model)
    bot.say("Hi, my name is Priya.")
    bot.wait()
    assert [role_of(call) for call in model.calls] == ["chat"]
    assert store.search(("users",)) == []


@pytest.mark.parametrize("stop", LENGTH_STOPS, ids=[f"{k}={v}" for k, v in LENGTH_STOPS])
def test_facts_cut_by_any_providers_length_limit_lose_their_unfinished_line(
    stop: tuple[str, str],
) -> None:
    def reply(messages: Sequence[BaseMessage]) -> str:
        return "name: Priya\njob: nur" if role_of(messages) == "extract" else "Hello."

    store, model = InMemoryStore(), FakeChat(reply=reply, finish=dict([stop]))
    say_and_wait(bot_for("priya", store, model), "Hi, I'm Priya, a nurse.")
    assert [f.line for f in UserMemory(store, "priya", None).facts()] == ["name: Priya"]


def test_long_term_memory_off_is_respected() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    say_and_wait(bot_for("priya", store, model, long_term_memory=False), "Hi, my name is Priya.")
    assert UserMemory(store, "priya", None).facts() == []


def test_a_moved_user_is_remembered_in_the_new_city_only() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    say_and_wait(bot_for("priya", store, model), "I live in Paris.")
    say_and_wait(bot_for("priya", store, model), "Big news: I moved to Lyon last month.")
    say_and_wait(bot_for("priya", store, model), "Where do I live?")
    system = system_of(chat_calls(model.calls)[-1])
    assert "home city: Lyon" in system and "Paris" not in system
    extractor = [call for call in model.calls if role_of(call) == "extract"][1]
    assert "home city: Paris" in system_of(extractor)  # it was shown the fact to replace


def test_forgetting_a_fact_takes_it_out_of_open_threads_at_their_next_turn() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    say_and_wait(bot_for("priya", store, model), "I'm vegetarian. My name is Priya.")
    open_thread = bot_for("priya", store, model)
    open_thread.say("Suggest a dinner.")
    assert "diet: vegetarian" in system_of(chat_calls(model.calls)[-1])
    facts = UserMemory(store, "priya", None)
    assert facts.forget("diet")
    facts.put("name", "Priya K.")
    open_thread.say("And dessert?")
    system = system_of(chat_calls(model.calls)[-1])
    assert "vegetarian" not in system and "name: Priya K." in system


def test_the_recalled_facts_stay_within_their_budget() -> None:
    store, model = InMemoryStore(), FakeChat(reply=with_memory_jobs())
    facts = UserMemory(store, "priya", None)
    for n in range(60):
        facts.put(f"fact {n}", f"the user's detail number {n} is worth remembering")
    say_and_wait(bot_for("priya", store, model, memory_tokens=80), "Hello")
    system = system_of(chat_calls(model.calls)[-1])
    block = system[system.index(MEMORY_HEADER) :]
    assert 0 < text_tokens(block, count) <= 80


def count(messages: Sequence[BaseMessage]) -> int:
    from langchain_core.messages.utils import count_tokens_approximately

    return count_tokens_approximately(messages)


def test_select_takes_whole_facts_in_rank_order() -> None:
    facts = UserMemory(InMemoryStore(), "u", None)
    ranked = [facts.put(f"t{n}", "word " * (5 + 34 * (n % 2))) for n in range(6)]
    chosen = select(ranked, 60, count)
    assert [entry["key"] for entry in chosen] == [ranked[0].key, ranked[2].key, ranked[4].key]
    assert text_tokens(memory_block(chosen), count) <= 60


class BrokenExtractor(FakeChat):
    def _record(self, messages: list[BaseMessage]) -> str:
        if role_of(messages) == "extract":
            raise ConnectionError("extractor is down")
        return super()._record(messages)


def test_a_failed_extraction_only_loses_that_messages_facts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryStore()
    bot = bot_for("priya", store, BrokenExtractor(reply=with_memory_jobs()))
    with caplog.at_level(logging.WARNING):
        assert bot.say("My name is Priya.") == "You said: My name is Priya."
        bot.wait()
    assert "Learning facts" in caplog.text
    assert [m.type for m in bot.history()[1:]] == ["human", "ai"]
    assert UserMemory(store, "priya", None).facts() == []


def test_fifty_concurrent_users_never_cross_talk() -> None:
    store, saver = InMemoryStore(), InMemorySaver()
    model = FakeChat(reply=with_memory_jobs())

    def user_session(n: int) -> tuple[list[str], str]:
        say_and_wait(bot_for(f"user{n}@example.com", store, model, saver), f"Hi, my name is U{n}x.")
        later = bot_for(f"user{n}@example.com", store, model, saver)
        later.say(f"What is my name, user {n}?")
        later.wait()
        facts = [f.line for f in UserMemory(store, f"user{n}@example.com", None).facts()]
        [call] = [c for c in chat_calls(model.calls) if c[-1].text == f"What is my name, user {n}?"]
        return facts, system_of(call)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(user_session, range(50)))
    for n, (facts, system) in enumerate(results):
        assert facts == [f"name: U{n}x"]
        assert re.findall(r"U\d+x", system) == [f"U{n}x"]


# --- whose memory a run uses ------------------------------------------------------------------


def test_the_server_identity_wins_and_a_client_cannot_choose_another() -> None:
    server = {"configurable": {"langgraph_auth_user_id": "alice"}}
    assert user_of(server, Context()) == "alice"  # type: ignore[arg-type]
    assert user_of(server, Context(user_id="alice")) == "alice"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="authenticated user"):
        user_of(server, Context(user_id="bob"))  # type: ignore[arg-type]
    anonymous = {"configurable": {"langgraph_auth_user_id": "anonymous"}}
    assert user_of(anonymous, Context()) is None  # type: ignore[arg-type]
    assert user_of({"configurable": {}}, Context(user_id="carol")) == "carol"  # type: ignore[arg-type]
    assert user_of({}, Context()) is None  # type: ignore[arg-type]


def test_an_eviction_recalls_the_facts_for_what_the_window_is_about_now() -> None:
    store, model = indexed_store(), FakeChat(reply=with_memory_jobs())
    facts = UserMemory(store, "priya", None)
    facts.put("name", "Priya")
    facts.put("diet", "vegetarian")
    bot = bot_for("priya", store, model, max_turns=3, memory_tokens=25)  # one fact
    bot.say("What is my name?")
    assert "name: Priya" in system_of(chat_calls(model.calls)[-1])
    for text in ("Dinner ideas for my diet?", "More food for my diet?", "And lunch food?"):
        bot.say(text)
    bot.say("Thanks")  # the first turn after the eviction
    system = system_of(chat_calls(model.calls)[-1])
    assert "diet: vegetarian" in system and "name: Priya" not in system


def test_a_facts_vector_travels_in_its_value_and_bad_ones_are_ignored() -> None:
    store = InMemoryStore()
    facts = UserMemory(store, "priya", WordEmbeddings())
    facts.put("diet", "vegetarian")
    value = store.get(namespace("priya"), topic_key("diet")).value  # type: ignore[union-attr]
    assert decode_vector(value["vector"]) == pytest.approx(
        WordEmbeddings().embed_query("diet: vegetarian")
    )
    store.put(namespace("priya"), "forged", {"memory": "name: Eve", "vector": "not base64!"})
    store.put(namespace("priya"), "short", {"memory": "job: nurse", "vector": encode_vector([1.0])})
    assert [f.topic for f in facts.search("diet food", 1)] == ["diet"]
    assert {f.topic for f in facts.search("diet food", 5)} == {"diet", "forged", "short"}
