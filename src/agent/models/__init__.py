"""Chat-model construction: one code path (ChatOpenAI) whose endpoint is configuration.

- AGENT_BACKEND=embedded, or no key and no base URL: the embedded llama.cpp server, started on
  first use (with a base URL too: an `agent model serve` server already running there).
- OPENAI_BASE_URL / AGENT_BASE_URL set: any OpenAI-compatible server (Ollama, vLLM, llama.cpp...).
- OPENAI_API_KEY set (no base URL): OpenAI itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from agent.models.providers import provider_chat_model, split_model_name

if TYPE_CHECKING:
    from agent.models.embedded import LlamaCppEndpoint

BackendName = Literal["openai", "compatible", "embedded"]
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
COMPATIBLE_DEFAULT_MODEL = "default"
EMBEDDED_MODEL_NAME = "smollm2"
REMOTE_RETRIES = 2  # transient failures only (connection, 408/409/429/5xx), with backoff


@dataclass(frozen=True)
class Backend:
    """Where model calls go, resolved from the environment."""

    name: BackendName
    base_url: str | None = None
    api_key: str | None = None
    default_model: str = OPENAI_DEFAULT_MODEL

    def describe(self) -> str:
        """A short human-readable label for headers and error messages."""
        if self.name == "embedded" and self.base_url:
            return f"embedded llama.cpp at {self.base_url}"
        if self.name == "embedded":
            custom = _env("AGENT_MODEL_PATH")
            return f"embedded llama.cpp ({os.path.basename(custom) if custom else 'SmolLM2-135M'})"
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
        raise ValueError(f"AGENT_BACKEND={forced!r} is not one of: embedded, openai, compatible.")
    if forced == "embedded":
        return Backend("embedded", base_url, api_key, default_model=EMBEDDED_MODEL_NAME)
    if forced is None and base_url is None and api_key is None:
        return Backend("embedded", default_model=EMBEDDED_MODEL_NAME)
    if base_url is not None and forced != "openai":
        return Backend("compatible", base_url, api_key, default_model=COMPATIBLE_DEFAULT_MODEL)
    if base_url is None and forced == "compatible":
        raise ValueError("AGENT_BACKEND=compatible needs OPENAI_BASE_URL or AGENT_BASE_URL.")
    if api_key is None:
        raise ValueError("AGENT_BACKEND=openai needs OPENAI_API_KEY.")
    return Backend("openai", api_key=api_key)


def embedded_endpoint(
    backend: Backend, *, window_tokens: int | None = None, reply_tokens: int | None = None
) -> LlamaCppEndpoint:
    """The llama.cpp endpoint of an embedded backend (starting the in-process server if needed)."""
    from agent.models.embedded import remote_endpoint, shared_server

    if backend.base_url is not None:
        return remote_endpoint(backend.base_url, backend.api_key or "")
    return shared_server(window_tokens=window_tokens, reply_tokens=reply_tokens).endpoint


def window_budget(
    max_tokens: int | None, reply_tokens: int | None, model: str | None = None
) -> int | None:
    """The window's token budget: as asked, else (embedded) what one slot holds minus a reply.

    Without it a long chat on the small embedded context would overflow the slot; remote
    models get no default budget (their contexts are large and their sizes vary).
    """
    if max_tokens is not None:
        return max_tokens
    backend = resolve_backend()
    if backend.name != "embedded" or split_model_name(model) is not None:
        return None
    from agent.models.embedded import DEFAULT_REPLY_RESERVE

    endpoint = embedded_endpoint(backend, reply_tokens=reply_tokens)
    return endpoint.slot_context() - (reply_tokens or DEFAULT_REPLY_RESERVE)


def chat_model(
    model: str | None = None,
    temperature: float = 0.7,
    *,
    max_reply_tokens: int | None = None,
    window_tokens: int | None = None,
) -> BaseChatModel:
    """The chat model for the configured backend.

    Remote models are cached per settings; embedded ones are cached by their server, so a
    stopped server never leaves a cached model pointing at a dead port.
    """
    if split_model_name(model) is not None:  # `provider:model` wins over the backend
        return provider_chat_model(str(model), temperature, max_reply_tokens)
    backend = resolve_backend()
    if backend.name == "embedded":
        endpoint = embedded_endpoint(
            backend, window_tokens=window_tokens, reply_tokens=max_reply_tokens
        )
        return endpoint.chat_model(model or backend.default_model, temperature, max_reply_tokens)
    return _remote_chat_model(backend, model, temperature, max_reply_tokens)


@lru_cache(maxsize=32)
def _remote_chat_model(
    backend: Backend, model: str | None, temperature: float, max_reply_tokens: int | None
) -> BaseChatModel:
    """A streaming ChatOpenAI that records usage and retries transient failures with backoff."""
    return ChatOpenAI(
        model=model or backend.default_model,
        temperature=temperature,
        max_completion_tokens=max_reply_tokens,
        base_url=backend.base_url,
        api_key=backend.api_key or "not-needed",  # type: ignore[arg-type]
        stream_usage=True,
        max_retries=REMOTE_RETRIES,
    )


__all__ = ["Backend", "chat_model", "embedded_endpoint", "resolve_backend", "window_budget"]
