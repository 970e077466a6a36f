"""What the commands need from the rest of the package, behind one seam tests can replace.

Commands never build a Chatbot or open memory themselves: they ask `Services` (click's context
object). Tests pass `Services(chat_model=FakeChat())` as `obj=` to `CliRunner.invoke`; production
uses the configured backend. No environment variable swaps in fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.errors import AgentError
from agent.memory.config import data_dir
from agent.settings import read

# LangChain, LangGraph, the database drivers and the model load inside the functions that use
# them (types under TYPE_CHECKING), so `agent --version` and `agent -h` start fast.
if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from agent.chatbot import Chatbot
    from agent.memory import Memory
    from agent.memory.longterm import UserMemory
    from agent.models import Backend


class NoUserError(AgentError, ValueError):
    """Raised when long-term memory is asked for but no user is named."""

    def __init__(self) -> None:
        super().__init__(
            "Long-term memory belongs to a user: name one with `agent --user NAME ...` or "
            "AGENT_USER_ID=NAME."
        )


def history_file() -> Path:
    """Where the chat prompt keeps the lines typed before (arrow-up history)."""
    return data_dir() / "chat-history"


@dataclass
class Services:
    """Builds Chatbots on one shared memory; `chat_model` replaces the configured backend in tests.

    `db_url` picks the memory (None: $AGENT_DB_URL, else the SQLite file in the data directory);
    `memory` may be handed in ready-made (tests), otherwise it is opened on first use.
    """

    chat_model: BaseChatModel | None = None
    db_url: str | None = None
    memory: Memory | None = None
    user_id: str | None = None
    embeddings: Embeddings | None | Literal["bundled"] = "bundled"
    _owned: list[Memory] = field(default_factory=list, repr=False)
    _bots: list[Chatbot] = field(default_factory=list, repr=False)

    def user(self) -> str | None:
        """Whose long-term memory chat and ask use: --user, else $AGENT_USER_ID (None: off)."""
        return self.user_id or read("AGENT_USER_ID") or None

    def user_memory(self) -> UserMemory:
        """The user's long-term memory, on the shared memory.

        Raises:
            NoUserError: If no user is named (--user or $AGENT_USER_ID).
        """
        from agent.memory.longterm import UserMemory

        user = self.user()
        if user is None:
            raise NoUserError()
        return UserMemory(self.open_memory().store, user, self.embeddings)

    def open_memory(self) -> Memory:
        """The memory every command of this process shares (opened once)."""
        if self.memory is None:
            from agent.memory import open_memory

            self.memory = open_memory(self.db_url)
            self._owned.append(self.memory)
        return self.memory

    def close(self) -> None:
        """Close the Chatbots built here (they finish their work), then the memory it opened.

        The memory handed in stays open. A Chatbot may still be using the memory after its
        reply (work after the reply runs in the background), so it is closed first.
        """
        while self._bots:
            self._bots.pop().close()
        while self._owned:
            self._owned.pop().close()
        self.memory = None

    def chatbot(
        self,
        persona: str | None = None,
        thread_id: str | None = None,
        *,
        persona_vars: Mapping[str, Any] | None = None,
        model: str | None = None,
        temperature: float | None = None,
    ) -> Chatbot:
        """A Chatbot on the shared memory, so /new and /switch see the same threads."""
        from agent.chatbot import Chatbot

        bot = Chatbot(
            persona,
            thread_id,
            persona_vars=persona_vars,
            chat_model=self.chat_model,
            memory=self.open_memory(),
            model=model,
            temperature=temperature,
            user_id=self.user(),
            embeddings=self.embeddings,
        )
        self._bots.append(bot)
        return bot

    def backend_label(self, model: str | None = None) -> str:
        """Where replies come from, for the chat header (`model`: the -m/--model given)."""
        if self.chat_model is not None:
            return f"chat model {type(self.chat_model).__name__}"
        return self._backend(model).describe()

    def needs_model_load(self, model: str | None = None) -> bool:
        """Whether the first reply must wait for the embedded model to load."""
        if self.chat_model is not None:
            return False
        return self._backend(model).loads_in_process

    def load_model(self, model: str | None = None) -> None:
        """Start the embedded model now, so the first reply does not pay for it."""
        self._backend(model).load()

    def check_model(self, model: str | None) -> None:
        """Refuse a model name the backend cannot serve now, not at the first message.

        The embedded model serves one model: another name is refused with what to do instead.

        Raises:
            UnsupportedModelError: If the backend cannot answer as `model`.
        """
        if self.chat_model is None and model is not None:
            from agent.context import Context

            self._backend(model).model_name(Context(model=model))

    def _backend(self, model: str | None) -> Backend:
        """The backend runs with this model use (a `provider:model` name: that provider's)."""
        from agent.context import Context
        from agent.models import resolve_backend

        context = Context(model=model) if model is not None else Context()  # else AGENT_MODEL
        return resolve_backend().for_run(context)
