"""The embedded backend: a llama.cpp server, in this process (default) or `agent model serve`.

In-process, the server starts on first use (a model call or token count), is shared by every
conversation of the process and is sized by the operator only (AGENT_CONTEXT_SIZE, AGENT_SLOTS).
A run's settings only divide one slot's context between the window and the reply. The
machinery (model file, sizing, HTTP client, server) lives in `agent.models.llamacpp`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent.context import Context
from agent.errors import ToolsUnsupportedError, UnsupportedModelError
from agent.models.backend import Backend
from agent.models.llamacpp.endpoint import LlamaCppEndpoint
from agent.models.llamacpp.paths import SMOLLM2_NAME, configured_model_label, model_names
from agent.models.llamacpp.sampling import Repetition
from agent.models.llamacpp.server import (
    EmbeddedServer,
    running_server,
    served_endpoint,
    shared_server,
    stop_shared_server,
)
from agent.window import TokenCounter

# The embedded window reserves this much of a slot for the reply, and caps replies at it.
DEFAULT_REPLY_RESERVE = 512
OTHER_MODELS = (
    "To use another model: name a provider's model (e.g. anthropic:claude-sonnet-4-5, "
    "ollama:qwen2.5:1.5b; see docs/models.md), set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
    "(an OpenAI-compatible server) with AGENT_MODEL, or AGENT_MODEL_PATH=/path/to/model.gguf to "
    "serve another GGUF file here."
)

__all__ = [
    "DEFAULT_REPLY_RESERVE",
    "EmbeddedBackend",
    "EmbeddedServer",
    "running_server",
    "shared_server",
    "stop_shared_server",
]


class EmbeddedBackend(Backend):
    """llama.cpp: the role-forgery guard, `/tokenize` counts, slot-sized windows, loop controls.

    `base_url`/`api_key` reach a model served by `agent model serve`; without them the model
    runs in this process. `repetition` holds the loop controls sent with every request.
    """

    default_model = SMOLLM2_NAME
    default_reply_tokens = DEFAULT_REPLY_RESERVE

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        repetition: Repetition | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.api_key = api_key
        self.repetition = repetition or Repetition()

    @property
    def loads_in_process(self) -> bool:  # type: ignore[override]
        """True unless the model is served by another process."""
        return self.base_url is None

    def endpoint(self) -> LlamaCppEndpoint:
        """The server's client (starting the in-process server on first use)."""
        if self.base_url is not None:
            return served_endpoint(self.base_url, self.api_key or "")
        return shared_server().endpoint

    def describe(self) -> str:
        """The model file, or the URL it is served at."""
        if self.base_url is not None:
            return f"embedded llama.cpp at {self.base_url}"
        return f"embedded llama.cpp ({configured_model_label()})"

    def load(self) -> None:
        """Start the server now (in-process) or check the served one answers."""
        self.endpoint().slot_context()

    # --- the model and its settings ----------------------------------------------------------

    def model_name(self, context: Context) -> str:
        """The one model this backend serves; another name is an error, not silently ignored.

        Raises:
            UnsupportedModelError: If the run names a model other than the served file.
        """
        names = model_names(self.endpoint().model_file())
        if context.model is None:
            return names[0]
        if context.model.strip().lower() in {name.lower() for name in names}:
            return context.model
        served = f"only {names[0]!r}" + (f" ({names[-1]})" if len(names) > 1 else "")
        raise UnsupportedModelError(self.describe(), context.model, served, OTHER_MODELS)

    def _cache_scope(self) -> Hashable:
        """The server: a restarted server gets new models, never ones aimed at a dead port."""
        return self.endpoint()

    def _new_chat_model(self, model: str, temperature: float, reply_cap: int) -> BaseChatModel:
        """A chat model for the server, with the role guard and this backend's loop controls."""
        return self.endpoint().chat_model(model, temperature, reply_cap, self.repetition)

    def count_tokens(self, context: Context) -> TokenCounter:
        """The server's own tokenizer (the server starts on the first count, not now)."""
        return self._count

    def _count(self, messages: Sequence[BaseMessage]) -> int:
        """Count with the server's `/tokenize`."""
        return self.endpoint().count_messages(messages)

    def context_size(self) -> int:
        """One slot's context: what a conversation's prompt and reply share."""
        return self.endpoint().slot_context()

    def check_tools(self) -> None:
        """Refuse tools when the model's chat template cannot render them (llama.cpp /props).

        Raises:
            ToolsUnsupportedError: If llama.cpp reports `supports_tool_calls: false`.
        """
        if not self.endpoint().supports_tool_calls():
            raise ToolsUnsupportedError(
                self.describe(),
                "its chat template has no tool support, so llama.cpp would silently drop them",
            )
