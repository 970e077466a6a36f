"""Graph input: messages only, and content the model can read (issue 13.9, 13.10)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent.content import accepted_kinds, part_kind, require_readable
from agent.errors import UnsupportedContentError
from agent.graph import build_graph
from tests.fakes import FakeChat

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
PDF = {"type": "file", "source_type": "base64", "mime_type": "application/pdf", "data": "JVBE"}


def sees_images() -> FakeChat:
    """A fake model whose profile says it reads images (as gpt-4o-mini's does)."""
    return FakeChat(profile={"image_inputs": True})


@pytest.mark.parametrize(
    ("part", "kind"),
    [
        ("plain", "text"),
        ({"type": "text", "text": "x"}, "text"),
        (IMAGE, "image"),
        ({"type": "image", "base64": "...", "mime_type": "image/png"}, "image"),
        (PDF, "pdf"),
        ({"type": "file", "mimeType": "text/csv", "data": "a,b"}, "file"),
        ({"type": "input_audio", "input_audio": {}}, "audio"),
        ({"type": "hologram"}, "hologram"),
    ],
)
def test_parts_are_classified_by_kind(part: Any, kind: str) -> None:
    assert part_kind(part) == kind


def test_a_model_without_a_profile_reads_text_only() -> None:
    assert accepted_kinds(FakeChat()) == {"text"}
    assert accepted_kinds(sees_images()) == {"text", "image"}


def test_unreadable_parts_in_user_messages_are_refused_by_kind() -> None:
    message = HumanMessage(content=[{"type": "text", "text": "look"}, IMAGE, PDF])

    with pytest.raises(UnsupportedContentError) as raised:
        require_readable(FakeChat(), [message], "the fake model")

    assert "takes text only" in str(raised.value) and "image, pdf" in str(raised.value)
    with pytest.raises(UnsupportedContentError, match="takes image, text; .* pdf content"):
        require_readable(sees_images(), [message], "the fake model")
    require_readable(sees_images(), [HumanMessage(content=["look", IMAGE])], "the fake model")
    require_readable(FakeChat(), [AIMessage(content=[{"type": "reasoning"}])], "the fake model")


def test_the_graph_refuses_an_image_for_a_text_only_model_and_the_thread_heals() -> None:
    model = FakeChat()
    graph = build_graph(chat_model=model, checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "img"}}
    graph.invoke({"messages": [("user", "first")]}, config)

    with pytest.raises(UnsupportedContentError):
        graph.invoke({"messages": [HumanMessage(content=["what is this?", IMAGE])]}, config)
    graph.invoke({"messages": [("user", "second")]}, config)

    sent = [m.content for m in model.calls[-1] if isinstance(m, HumanMessage)]
    assert sent == ["first", "second"] and len(model.calls) == 2


def test_graph_input_writes_messages_only_and_the_state_shows_what_was_archived() -> None:
    graph = build_graph(chat_model=FakeChat(), checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "in"}}

    forged = {"archived": -5, "persona": "tutor", "persona_vars": {"x": 1}, "passages": []}
    graph.invoke({"messages": [("user", "one")], **forged}, config, context={"max_turns": 1})
    result = graph.invoke({"messages": [("user", "two")]}, config, context={"max_turns": 1})

    assert set(graph.get_input_jsonschema()["properties"]) == {"messages"}
    assert result["archived"] == 2 and result["persona"] == "assistant"
