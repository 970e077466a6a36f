from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from agent.memory.namespaces import label, unlabel


@pytest.mark.parametrize(
    "text", ["abc-123", "session.42", "ada@example.com", "a\x00b", "transcript", "ü", "%2E", "."]
)
def test_labels_are_valid_store_labels_and_round_trip(text: str) -> None:
    store = InMemoryStore()
    store.put(("users", label(text)), "k", {"v": 1})
    assert store.get(("users", label(text)), "k") is not None
    assert unlabel(label(text)) == text


def test_plain_identifiers_stay_readable() -> None:
    assert label("abc-123_x~") == "abc-123_x~"


@given(st.text(min_size=1), st.text(min_size=1))
def test_labels_are_injective(a: str, b: str) -> None:
    if a != b:
        assert label(a) != label(b)
    assert "." not in label(a) and "\x00" not in label(a)


@pytest.mark.parametrize("bad", ["", None])
def test_empty_text_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        label(bad)  # type: ignore[arg-type]
