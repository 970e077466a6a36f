"""Chat-model construction: one code path (ChatOpenAI) whose endpoint is configuration.

- OPENAI_BASE_URL / AGENT_BASE_URL set: any OpenAI-compatible server (Ollama, vLLM, llama.cpp...).
- OPENAI_API_KEY set (no base URL): OpenAI itself.
- neither, or AGENT_BACKEND=embedded: the embedded llama.cpp server, started on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

BackendName = Literal["openai", "compatible", "embedded"]
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
EMBEDDED_MODEL_NAME = "smollm2"


@dataclass(frozen=True)
class Backend:
    """Where model calls go, resolved from the environment."""

    name: BackendName
    base_url: str | None = None
    api_key: str | None = None
    default_model: str = OPENAI_DEFAULT_MODEL

    def describe(self) -> str:
        """A short human-readable label for headers and error messages."""
        if self.name == "embedded":
            return "embedded llama.cpp (SmolLM2-135M)"
        if self.name == "compatible":
            return f"OpenAI-compatible server at {self.base_url}"
        return "OpenAI"


def _env(name: str) -> str | None:
    """Return a non-empty environment value."""
    return os.environ.get(name, "").strip() or None


def resolve_backend() -> Backend:
    """Pick the backend from AGENT_BACKEND, AGENT_BASE_URL/OPENAI_BASE_URL and OPENAI_API_KEY."""
    forced = _env("AGENT_BACKEND")
    base_url = _env("AGENT_BASE_URL") or _env("OPENAI_BASE_URL")
    api_key = _env("OPENAI_API_KEY")
    if forced not in (None, "embedded", "openai", "compatible"):
        raise ValueError(
            f"AGENT_BACKEND={forced!r} is not one of: embedded, openai, compatible."
        )
    if forced == "embedded" or (forced is None and base_url is None and api_key is None):
        return Backend("embedded", default_model=EMBEDDED_MODEL_NAME)
    if base_url is not None and forced != "openai":
        return Backend("compatible", base_url=base_url, api_key=api_key, default_model="default")
    if api_key is None:
        raise ValueError("AGENT_BACKEND=openai needs OPENAI_API_KEY.")
    return Backend("openai", api_key=api_key)


def chat_model(model: str | None = None, temperature: float = 0.7) -> BaseChatModel:
    """The chat model for the configured backend (cached per backend, model and temperature)."""
    return _chat_model(resolve_backend(), model, temperature)


@lru_cache(maxsize=32)
def _chat_model(backend: Backend, model: str | None, temperature: float) -> BaseChatModel:
    """Build a ChatOpenAI that streams and records usage; the embedded server starts lazily."""
    if backend.name == "embedded":
        from agent.models.embedded import embedded_chat_model

        return embedded_chat_model(model or backend.default_model, temperature)
    return ChatOpenAI(
        model=model or backend.default_model,
        temperature=temperature,
        base_url=backend.base_url,
        api_key=backend.api_key or "not-needed",  # type: ignore[arg-type]
        stream_usage=True,
        max_retries=2,
    )


__all__ = ["Backend", "chat_model", "resolve_backend"]
