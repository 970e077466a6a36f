"""A chat model handed in (`build_graph(chat_model=...)`), as a backend."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately

from agent.context import Context
from agent.models.backend import Backend
from agent.models.failures import describe_model
from agent.window import TokenCounter


class GivenModel(Backend):
    """A chat model handed in (`build_graph(chat_model=...)`): used as is for every run.

    Its reply length is whatever the model was built with; the window counts with
    `token_counter` if given, else approximately, and uses the run's `max_tokens`.
    """

    def __init__(self, model: BaseChatModel, token_counter: TokenCounter | None = None) -> None:
        super().__init__()
        self.model = model
        self.token_counter = token_counter

    def describe(self) -> str:
        """Name the model's class or endpoint."""
        return describe_model(self.model)

    def _new_chat_model(self, model: str, temperature: float, reply_cap: int) -> BaseChatModel:
        """Never called: the given model is the model."""
        return self.model

    def for_run(self, context: Context) -> Backend:
        """This backend for every run: the given model is the model, whatever its name says."""
        return self

    def chat_model(self, context: Context) -> BaseChatModel:
        """The given model, whatever the run's settings."""
        return self.model

    def reply_cap(self, context: Context) -> int | None:
        """The run's cap if it set one (the model itself may have been built with its own)."""
        return context.max_reply_tokens

    def count_tokens(self, context: Context) -> TokenCounter:
        """The given counter, else the approximation."""
        return self.token_counter or count_tokens_approximately
