"""Models named `provider:model` (Anthropic, Gemini, Ollama, OpenAI, any LangChain provider).

`AGENT_MODEL=anthropic:claude-sonnet-4-5` is built by `langchain.chat_models.init_chat_model`;
a name without a known provider prefix (`gpt-4o-mini`, `qwen2.5:1.5b`) keeps its old meaning:
a model of the configured backend. Each provider's client reads its own environment (its API
key, its base URL); its package is an optional extra (`pip install 'agent[anthropic]'`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain.chat_models import base as chat_models_base
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately

from agent.context import Context
from agent.errors import (
    MissingProviderError,
    ModelAuthError,
    ModelError,
    ModelNotFoundError,
    ModelUnreachableError,
)
from agent.models.backend import Backend
from agent.models.tokens import FALLBACK_ENCODING, encoding_for, tiktoken_counter
from agent.window import TokenCounter

REMOTE_RETRIES = 2  # transient failures only (connection, 408/429/5xx), with backoff


@dataclass(frozen=True)
class Provider:
    """What this package knows about one LangChain provider: package, extra, settings."""

    name: str  # init_chat_model's provider key, the prefix in `name:model`
    label: str
    module: str
    package: str
    extra: str | None = None  # this package's extra that installs it
    chat_class: str = ""
    env_prefixes: tuple[str, ...] = ()  # environment the client reads (cache key)
    key_env: str | None = None
    url_env: str | None = None
    reply_cap: str = "max_tokens"  # the constructor's keyword for the most tokens of a reply
    default_reply_tokens: int = 4096  # the cap when a run sets none (a guard, not a style)
    options: Mapping[str, Any] = field(default_factory=dict)
    advice: Mapping[type[ModelError], str] = field(default_factory=dict)


def _remote_advice(
    name: str, label: str, key_env: str, url_env: str
) -> dict[type[ModelError], str]:
    """What to do when a hosted provider rejects the key, is unreachable, or lacks the model."""
    return {
        ModelAuthError: f"Set a valid {key_env}.",
        ModelUnreachableError: f"Check the network, or fix {url_env} if you set it.",
        ModelNotFoundError: f"Set AGENT_MODEL to {name}:<a model {label} serves>.",
    }


KNOWN_PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Provider(
            "anthropic",
            "Anthropic",
            "langchain_anthropic",
            "langchain-anthropic",
            extra="anthropic",
            chat_class="ChatAnthropic",
            env_prefixes=("ANTHROPIC_",),
            key_env="ANTHROPIC_API_KEY",
            url_env="ANTHROPIC_BASE_URL",
            options={"max_retries": REMOTE_RETRIES},
            advice=_remote_advice(
                "anthropic", "Anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"
            ),
        ),
        Provider(
            "google_genai",
            "Google Gemini",
            "langchain_google_genai",
            "langchain-google-genai",
            extra="google",
            chat_class="ChatGoogleGenerativeAI",
            env_prefixes=("GOOGLE_", "GEMINI_"),
            key_env="GOOGLE_API_KEY",
            url_env="GOOGLE_GEMINI_BASE_URL",
            # The Gemini client counts attempts, not retries.
            options={"max_retries": REMOTE_RETRIES + 1},
            advice=_remote_advice(
                "google_genai", "Gemini", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"
            ),
        ),
        Provider(
            "ollama",
            "Ollama",
            "langchain_ollama",
            "langchain-ollama",
            extra="ollama",
            chat_class="ChatOllama",
            env_prefixes=("OLLAMA_",),
            key_env="OLLAMA_API_KEY",
            url_env="OLLAMA_HOST",
            reply_cap="num_predict",
            default_reply_tokens=1024,  # often a small local model on a CPU: loops are slow
            advice={
                ModelAuthError: "Set OLLAMA_API_KEY to the key your Ollama server expects.",
                ModelUnreachableError: "Start it (`ollama serve`) or fix OLLAMA_HOST.",
                ModelNotFoundError: "Pull the model (`ollama pull <model>`) or set AGENT_MODEL "
                "to ollama:<a model `ollama list` shows>.",
            },
        ),
        Provider(
            "openai",
            "OpenAI",
            "langchain_openai",
            "langchain-openai",
            chat_class="ChatOpenAI",
            env_prefixes=("OPENAI_",),
            key_env="OPENAI_API_KEY",
            url_env="OPENAI_BASE_URL",
            reply_cap="max_completion_tokens",
            options={"max_retries": REMOTE_RETRIES, "stream_usage": True},
            advice=_remote_advice("openai", "OpenAI", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        ),
    )
}


def langchain_provider_names() -> frozenset[str]:
    """Every provider key `init_chat_model` understands (its registry, plus ours)."""
    registry: Mapping[str, Any] = getattr(chat_models_base, "_BUILTIN_PROVIDERS", {})
    return frozenset(registry) | frozenset(KNOWN_PROVIDERS)


def find_provider(name: str) -> Provider:
    """The provider for a key `init_chat_model` knows (a generic entry for the ones we don't)."""
    if name in KNOWN_PROVIDERS:
        return KNOWN_PROVIDERS[name]
    registry: Mapping[str, Any] = getattr(chat_models_base, "_BUILTIN_PROVIDERS", {})
    module = str(registry[name][0]) if name in registry else f"langchain_{name}"
    stem = name.split("_")[0].upper()
    return Provider(
        name,
        name,
        module,
        module.split(".")[0].replace("_", "-"),
        env_prefixes=(f"{stem}_",),
        options={"max_retries": REMOTE_RETRIES},
    )


def split_model_name(model: str | None) -> tuple[Provider, str] | None:
    """`(provider, model)` for a `provider:model` name; None for a bare name (or none).

    Only a known provider key counts as a prefix: `qwen2.5:1.5b` is a bare name.
    """
    if not model or ":" not in model:
        return None
    prefix, _, rest = model.partition(":")
    if prefix not in langchain_provider_names() or not rest:
        return None
    return find_provider(prefix), rest


def require_package(provider: Provider, model: str) -> None:
    """Raise MissingProviderError unless the provider's integration package can be imported."""
    try:
        importlib.import_module(provider.module)
    except ImportError as error:
        raise MissingProviderError(model, provider.package, provider.extra) from error


def client_options(
    provider: Provider, temperature: float, max_reply_tokens: int | None
) -> dict[str, Any]:
    """Constructor keywords for the provider's chat model: sampling, reply cap, retries."""
    options: dict[str, Any] = {"temperature": temperature, **provider.options}
    if max_reply_tokens is not None:
        options[provider.reply_cap] = max_reply_tokens
    if provider.name == "ollama":  # its client has no retries of its own
        from agent.models.retrying import AsyncRetryingTransport, RetryingTransport

        options["sync_client_kwargs"] = {"transport": RetryingTransport(REMOTE_RETRIES)}
        options["async_client_kwargs"] = {"transport": AsyncRetryingTransport(REMOTE_RETRIES)}
    return options


def provider_chat_model(
    model: str, temperature: float = 0.7, max_reply_tokens: int | None = None
) -> BaseChatModel:
    """Build the chat model for a `provider:model` name (`ProviderBackend` caches it).

    Args:
        model: `provider:model`, e.g. `anthropic:claude-sonnet-4-5` or `ollama:qwen2.5:1.5b`.
        temperature: Sampling temperature.
        max_reply_tokens: Most tokens one reply may have (None: the provider's default).

    Returns:
        The provider's LangChain chat model (streaming, usage metadata, retries configured).

    Raises:
        ValueError: `model` has no known provider prefix.
        MissingProviderError: The provider's package is not installed (names the extra).
    """
    named = split_model_name(model)
    if named is None:
        raise ValueError(f"{model!r} does not start with a known provider (e.g. 'anthropic:').")
    provider, name = named
    require_package(provider, model)
    options = client_options(provider, temperature, max_reply_tokens)
    try:
        built: BaseChatModel = init_chat_model(name, model_provider=provider.name, **options)
    except ImportError as error:  # a dependency of the integration package is missing
        raise MissingProviderError(model, provider.package, provider.extra) from error
    return built


def provider_environment(provider: Provider) -> tuple[tuple[str, str], ...]:
    """The part of the environment the provider's client reads (a changed key: a new client)."""
    return tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith(provider.env_prefixes))
    )


class ProviderBackend(Backend):
    """Runs whose model is `provider:model`: that provider's LangChain client, built by name.

    The context size is not known here, so the window is the run's `max_tokens` (or turns);
    tokens are counted with tiktoken for OpenAI models, approximately for the others (their
    own counters call the provider's API).
    """

    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def describe(self) -> str:
        """The provider's name."""
        return self.provider.label

    def model_name(self, context: Context) -> str:
        """The run's whole `provider:model` name."""
        return context.model or f"{self.provider.name}:"

    def default_reply_cap(self, size: int | None) -> int:
        """The provider's default cap (a local Ollama model gets a small one: it may loop)."""
        return self.provider.default_reply_tokens

    def _cache_scope(self) -> Hashable:
        """The provider's environment: a changed key or base URL gets a new client."""
        return provider_environment(self.provider)

    def _new_chat_model(self, model: str, temperature: float, reply_cap: int) -> BaseChatModel:
        """The provider's client for these settings."""
        return provider_chat_model(model, temperature, reply_cap)

    def count_tokens(self, context: Context) -> TokenCounter:
        """Tiktoken for OpenAI models, else about 4 characters a token (offline)."""
        named = split_model_name(context.model)
        if named is None or self.provider.name != "openai":
            return count_tokens_approximately
        return tiktoken_counter(encoding_for(named[1]) or FALLBACK_ENCODING)


def provider_of(model: BaseChatModel) -> Provider | None:
    """The known provider whose client class `model` is (None: another kind of model)."""
    names = {cls.__name__ for cls in type(model).__mro__}
    return next((p for p in KNOWN_PROVIDERS.values() if p.chat_class in names), None)


def endpoint_of(model: BaseChatModel, provider: Provider) -> str | None:
    """The base URL a provider model talks to, as configured (None: the provider's default)."""
    for attribute in ("anthropic_api_url", "base_url", "openai_api_base"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return os.environ.get(provider.url_env or "", "").strip() or None


def describe_provider_model(model: BaseChatModel, provider: Provider) -> str:
    """A label for messages: provider, model and endpoint ("Anthropic claude-x at URL")."""
    name = getattr(model, "model", None) or getattr(model, "model_name", None)
    label = f"{provider.label} {name}" if name else provider.label
    url = endpoint_of(model, provider)
    return f"{label} at {url}" if url else label
