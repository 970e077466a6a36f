"""Memory beyond the window on the real embedded model (issue 14): the tutorial, remembered."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from agent import Chatbot
from agent.models.embedded import EmbeddedServer

pytestmark = pytest.mark.integration


def test_the_tutorials_name_is_answered_after_the_window_evicted_it(
    embedded_server: EmbeddedServer, short_replies: dict[str, object]
) -> None:
    bot = Chatbot(max_turns=2, summary_tokens=64, **short_replies)  # type: ignore[arg-type]
    bot.say("Hi, my name is Priya.")
    bot.say("I like hiking.")
    bot.say("What's a good trail snack?")
    window = [str(m.text) for m in bot.history()[1:] if isinstance(m, HumanMessage)]
    assert not any("Priya" in text for text in window)  # evicted from the window...
    assert "Priya" in bot.summary()  # ...and kept in the summary the model sees
    assert "Priya" in bot.say("What is my name?")
