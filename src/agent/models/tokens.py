"""Offline token counting for the window's budget."""

from __future__ import annotations

from langchain_core.messages.utils import count_tokens_approximately

from agent.window import TokenCounter


def token_counter(model: str | None = None) -> TokenCounter:
    """The counter for the configured backend (approximate until a backend knows better)."""
    del model
    return count_tokens_approximately
