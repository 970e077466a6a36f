"""The Backend object: reply caps within the window's reserve, budgets, cached models, cut marks."""

from __future__ import annotations

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.checkpoint.memory import InMemorySaver

from agent import Context, build_graph
from agent.errors import ReplyCapError
from agent.models import Backend, GivenModel, OpenAIBackend, backend_for
from agent.models.cache import MODEL_CACHE_SIZE, LRUCache
from agent.models.replies import mark_cut
from tests.fakes import FakeChat


class SizedBackend(Backend):
    """A backend whose model takes `size` tokens per request (as the embedded slot does)."""

    default_reply_tokens = 512

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.built: list[tuple[str, float, int]] = []

    def describe(self) -> str:
        return "sized test backend"

    def _new_chat_model(self, model: str, temperature: float, reply_cap: int) -> BaseChatModel:
        self.built.append((model, temperature, reply_cap))
        return FakeChat()

    def context_size(self) -> int:
        return self.size


# --- the reply never outgrows the room the window leaves it --------------------------------


def test_the_default_cap_is_the_reserve_the_window_leaves() -> None:
    backend = SizedBackend(2048)
    assert backend.reply_cap(Context()) == 512
    assert backend.budget(Context()) == 2048 - 512


def test_a_larger_cap_enlarges_the_reserve_and_shrinks_the_window() -> None:
    backend = SizedBackend(2048)
    context = Context(max_reply_tokens=1000)
    assert backend.reply_cap(context) == 1000
    assert backend.budget(context) == 1048
    assert backend.budget(context) + backend.reply_cap(context) == 2048


def test_a_run_max_tokens_only_shrinks_the_window() -> None:
    backend = SizedBackend(2048)
    assert backend.budget(Context(max_tokens=700)) == 700
    assert backend.budget(Context(max_tokens=10**9)) == 2048 - 512
    assert backend.budget(Context(max_tokens=10**9, max_reply_tokens=100)) == 1948


def test_a_cap_that_leaves_the_window_less_than_a_quarter_is_refused() -> None:
    backend = SizedBackend(2048)
    assert backend.reply_cap(Context(max_reply_tokens=1536)) == 1536
    with pytest.raises(ReplyCapError, match="max_reply_tokens=1537.*at most 1536") as caught:
        backend.budget(Context(max_reply_tokens=1537))
    assert "AGENT_CONTEXT_SIZE" in str(caught.value)
    with pytest.raises(ReplyCapError):
        backend.chat_model(Context(max_reply_tokens=10**9))
    assert backend.built == []  # nothing was built for the refused setting


def test_a_small_context_gets_a_proportionally_small_default_cap() -> None:
    backend = SizedBackend(600)
    assert backend.reply_cap(Context()) == 150
    assert backend.budget(Context()) == 450


def test_backends_without_a_known_context_cap_replies_at_their_default() -> None:
    backend = OpenAIBackend("sk-test")
    assert backend.reply_cap(Context()) == 4096
    assert backend.reply_cap(Context(max_reply_tokens=10**6)) == 10**6  # the provider says no
    model = backend.chat_model(Context())
    assert model.max_tokens == 4096  # type: ignore[attr-defined]


# --- cached models stay bounded --------------------------------------------------------------


def test_the_lru_cache_keeps_the_most_recently_used() -> None:
    cache: LRUCache[str] = LRUCache(maxsize=2)
    assert cache.get("a", lambda: "A") == "A"
    assert cache.get("b", lambda: "B") == "B"
    assert cache.get("a", lambda: "not rebuilt") == "A"  # a is now the most recent
    cache.get("c", lambda: "C")  # evicts b
    assert len(cache) == 2
    assert cache.get("b", lambda: "B2") == "B2"
    assert cache.get("a", lambda: "A2") == "A2"  # a went when b came back


def test_client_chosen_settings_cannot_grow_the_real_model_cache() -> None:
    backend = OpenAIBackend("sk-test")
    first = backend.chat_model(Context(temperature=0.5))
    for step in range(300):
        backend.chat_model(Context(temperature=step / 150, model=f"model-{step}"))
    assert len(backend._models) == MODEL_CACHE_SIZE
    assert backend.chat_model(Context(temperature=0.5)) is not first  # evicted long ago
    again = backend.chat_model(Context(temperature=0.25))
    assert backend.chat_model(Context(temperature=0.25)) is again  # recent ones are reused


# --- one backend per graph -------------------------------------------------------------------


def test_a_given_model_is_wrapped_and_a_backend_comes_alone() -> None:
    model = FakeChat()
    wrapped = backend_for(chat_model=model)
    assert isinstance(wrapped, GivenModel)
    assert wrapped.chat_model(Context(model="anything")) is model
    assert wrapped.count_tokens(Context()) is count_tokens_approximately
    assert wrapped.budget(Context(max_tokens=300)) == 300
    with pytest.raises(TypeError, match="backend= alone"):
        backend_for(OpenAIBackend("sk-test"), chat_model=model)
    with pytest.raises(TypeError):
        build_graph(backend=OpenAIBackend("sk-test"), chat_model=model)


def test_the_graph_asks_its_backend_for_model_budget_and_counter() -> None:
    backend = SizedBackend(2048)
    graph = build_graph(backend=backend, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [HumanMessage("hi")]}, config, context=Context(temperature=0.1))
    assert backend.built == [("default", 0.1, 512)]


# --- replies cut by the length limit ------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {"finish_reason": "length"},  # OpenAI, llama.cpp, vLLM
        {"stop_reason": "max_tokens"},  # Anthropic
        {"finish_reason": "MAX_TOKENS"},  # Gemini
        {"done_reason": "length"},  # Ollama
    ],
)
def test_every_providers_length_stop_marks_the_reply_cut(metadata: dict[str, str]) -> None:
    reply = AIMessage(
        "half a sent",
        id="r1",
        response_metadata=metadata,
        usage_metadata={"input_tokens": 9, "output_tokens": 37, "total_tokens": 46},
    )
    marked = mark_cut(reply, 40)
    assert marked.response_metadata == {**metadata, "cut": True, "reply_tokens": 37}
    assert (marked.id, marked.text) == ("r1", "half a sent")
    assert reply.response_metadata == metadata  # the original is not changed


@pytest.mark.parametrize(
    "metadata",
    [{"finish_reason": "stop"}, {"stop_reason": "end_turn"}, {"finish_reason": "STOP"}, {}],
)
def test_finished_replies_are_not_marked(metadata: dict[str, str]) -> None:
    reply = AIMessage("done.", response_metadata=metadata)
    assert mark_cut(reply, 40) is reply


def test_without_usage_figures_the_cap_is_the_count() -> None:
    marked = mark_cut(AIMessage("x", response_metadata={"finish_reason": "length"}), 40)
    assert marked.response_metadata["reply_tokens"] == 40


def test_a_cut_reply_is_saved_marked_through_the_graph() -> None:
    model = FakeChat(finish={"finish_reason": "length"})
    graph = build_graph(chat_model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    events = list(graph.stream({"messages": [HumanMessage("hi")]}, config, stream_mode="messages"))
    assert events  # streamed token by token
    saved = graph.get_state(config).values["messages"][-1]
    assert saved.response_metadata["cut"] is True
    assert saved.response_metadata["finish_reason"] == "length"
    plain = build_graph(chat_model=FakeChat(), checkpointer=InMemorySaver())
    plain.invoke({"messages": [HumanMessage("hi")]}, config)
    assert "cut" not in plain.get_state(config).values["messages"][-1].response_metadata


def test_a_given_models_cap_is_unknown_unless_the_run_sets_one() -> None:
    wrapped = GivenModel(FakeChat())
    assert wrapped.reply_cap(Context()) is None
    assert wrapped.reply_cap(Context(max_reply_tokens=64)) == 64
    reported = AIMessage("x", response_metadata={"finish_reason": "length", "reply_tokens": 7})
    assert mark_cut(reported, None).response_metadata["reply_tokens"] == 7
