"""One object per way of reaching a model: it owns the chat model, counter, budget and reply cap.

The graph gets a `Backend` once (`build_graph(backend=...)`, or `chat_model=...` wrapped in
`GivenModel`, or the configured one) and asks it, per run's `Context`:

- `chat_model(ctx)`: the LangChain chat model, with the reply cap applied;
- `count_tokens(ctx)`: the token counter the window uses;
- `budget(ctx)`: tokens the system prompt and window may use (None: turns only);
- `reply_cap(ctx)`: the most tokens one reply may have; on a backend whose context size is
  known, the window leaves exactly that much room, so a reply can never outgrow its reserve;
- `check_tools()`: refuse tools the model cannot call; `describe()`: a label for errors.

A new kind of backend is one small subclass: `describe` and `_new_chat_model`, plus whatever
it knows better than the defaults (its counter, its context size, its tool support).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately

from agent.context import Context
from agent.errors import ReplyCapError
from agent.models.cache import LRUCache
from agent.window import TokenCounter

# A reply may take at most this share of a known context; the rest stays for the window.
MAX_REPLY_SHARE = 0.75


class Backend(ABC):
    """Where replies come from, and everything about the model the window needs to know."""

    default_model: ClassVar[str] = "default"
    # The reply cap when a run sets none: a safety net against runaway replies, not a style.
    default_reply_tokens: ClassVar[int] = 1024
    # Whether the first reply waits for a model to load in this process (the CLI says so).
    loads_in_process: ClassVar[bool] = False

    def __init__(self) -> None:
        self._models: LRUCache[BaseChatModel] = LRUCache()
        self._providers: LRUCache[Backend] = LRUCache()

    def for_run(self, context: Context) -> Backend:
        """The backend that serves a run: this one, unless it names a `provider:model`.

        `anthropic:claude-sonnet-4-5`, `ollama:qwen2.5:1.5b`... go to that provider's client
        whatever backend is configured; a bare name stays with this backend.
        """
        from agent.models.providers import ProviderBackend, split_model_name  # loads langchain

        named = split_model_name(context.model)
        if named is None:
            return self
        provider = named[0]
        return self._providers.get(provider.name, lambda: ProviderBackend(provider))

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable label for headers and error messages."""

    @abstractmethod
    def _new_chat_model(self, model: str, temperature: float, reply_cap: int) -> BaseChatModel:
        """Build this backend's chat model for one combination of settings."""

    def model_name(self, context: Context) -> str:
        """The model a run asks for (its own, else the backend's default)."""
        return context.model or self.default_model

    def chat_model(self, context: Context) -> BaseChatModel:
        """The chat model for a run's settings (kept in a bounded cache and reused)."""
        name, temperature = self.model_name(context), context.temperature
        cap = self._reply_cap(context)
        return self._models.get(
            (self._cache_scope(), name, temperature, cap),
            lambda: self._new_chat_model(name, temperature, cap),
        )

    def _cache_scope(self) -> Hashable:
        """What else a cached model depends on (e.g. which server it talks to)."""
        return None

    def count_tokens(self, context: Context) -> TokenCounter:
        """The window's token counter (about 4 characters a token unless the backend knows)."""
        return count_tokens_approximately

    def context_size(self) -> int | None:
        """Tokens one request may use (prompt and reply), when the backend knows it."""
        return None

    def reply_cap(self, context: Context) -> int | None:
        """The most tokens one reply may have: the run's, else the backend's default.

        Raises:
            ReplyCapError: If the context size is known and the cap would leave the window
                less than a quarter of it.
        """
        return self._reply_cap(context)

    def _reply_cap(self, context: Context) -> int:
        """The cap rule every backend that builds its own models applies (see `reply_cap`)."""
        size = self.context_size()
        if context.max_reply_tokens is None:
            return self.default_reply_cap(size)
        most = int(size * MAX_REPLY_SHARE) if size is not None else None
        if most is not None and size is not None and context.max_reply_tokens > most:
            raise ReplyCapError(context.max_reply_tokens, size, most, self.describe())
        return context.max_reply_tokens

    def default_reply_cap(self, size: int | None) -> int:
        """The cap for runs that set none (at most a quarter of a known context)."""
        if size is None:
            return self.default_reply_tokens
        return min(self.default_reply_tokens, size // 4)

    def budget(self, context: Context) -> int | None:
        """Tokens the system prompt and window may use: the context minus the reply's reserve.

        A run's `max_tokens` can only shrink it. Without a known context size it is the run's
        `max_tokens` (None: the window is bounded by turns only).
        """
        size = self.context_size()
        if size is None:
            return context.max_tokens
        room = size - self._reply_cap(context)
        return room if context.max_tokens is None else min(context.max_tokens, room)

    def check_tools(self) -> None:
        """Refuse tools the model cannot call (nothing to check unless the backend can tell)."""
        return None

    def load(self) -> None:
        """Get ready now (load a local model), so the first reply does not wait for it."""
        return None
