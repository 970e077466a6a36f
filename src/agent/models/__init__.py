"""Reaching a model: one `Backend` object per way, resolved from the environment.

- AGENT_BACKEND=embedded, or no key and no base URL: the embedded llama.cpp server, started on
  first use (with a base URL too: an `agent model serve` server already running there).
- OPENAI_BASE_URL / AGENT_BASE_URL set: any OpenAI-compatible server (Ollama, vLLM, llama.cpp...).
- OPENAI_API_KEY set (no base URL): OpenAI itself.
- whatever is configured, a run whose model is `provider:model` (`anthropic:claude-sonnet-4-5`)
  goes to that provider (`Backend.for_run`, `agent.models.providers`).

The graph asks its backend for everything model-shaped (see `agent.models.backend`).
"""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel

from agent.models.backend import Backend
from agent.models.embedded import EmbeddedBackend
from agent.models.given import GivenModel
from agent.models.remote import CompatibleBackend, OpenAIBackend
from agent.window import TokenCounter

BACKEND_NAMES = ("embedded", "openai", "compatible")


def _env(name: str) -> str | None:
    """Return a non-empty environment value."""
    return os.environ.get(name, "").strip() or None


def resolve_backend() -> Backend:
    """The backend the environment configures; building it starts and loads nothing.

    Returns:
        An `EmbeddedBackend`, `CompatibleBackend` or `OpenAIBackend`.

    Raises:
        ValueError: For an unknown AGENT_BACKEND, or one missing the URL or key it needs.
    """
    forced = _env("AGENT_BACKEND")
    base_url = _env("AGENT_BASE_URL") or _env("OPENAI_BASE_URL")
    api_key = _env("OPENAI_API_KEY")
    if forced not in (None, *BACKEND_NAMES):
        raise ValueError(f"AGENT_BACKEND={forced!r} is not one of: {', '.join(BACKEND_NAMES)}.")
    if forced == "embedded" or (forced is None and base_url is None and api_key is None):
        return EmbeddedBackend(base_url, api_key)
    if base_url is not None and forced != "openai":
        return CompatibleBackend(base_url, api_key)
    if forced == "compatible":
        raise ValueError("AGENT_BACKEND=compatible needs OPENAI_BASE_URL or AGENT_BASE_URL.")
    if api_key is None:
        raise ValueError("AGENT_BACKEND=openai needs OPENAI_API_KEY.")
    return OpenAIBackend(api_key)


def backend_for(
    backend: Backend | None = None,
    chat_model: BaseChatModel | None = None,
    token_counter: TokenCounter | None = None,
) -> Backend:
    """The one backend a graph uses: the one given, a given chat model wrapped, else the configured.

    Raises:
        TypeError: If a backend comes with a chat model or a token counter (the backend owns both).
    """
    if backend is not None:
        if chat_model is not None or token_counter is not None:
            raise TypeError("Pass backend= alone: it owns the chat model and the token counter.")
        return backend
    if chat_model is not None:
        return GivenModel(chat_model, token_counter)
    return resolve_backend()


__all__ = [
    "Backend",
    "CompatibleBackend",
    "EmbeddedBackend",
    "GivenModel",
    "OpenAIBackend",
    "backend_for",
    "resolve_backend",
]
