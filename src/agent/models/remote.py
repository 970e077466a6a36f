"""OpenAI and any OpenAI-compatible server (Ollama, vLLM, LM Studio, llama-server...)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately
from langchain_openai import ChatOpenAI

from agent.context import Context
from agent.models.backend import Backend
from agent.models.tokens import FALLBACK_ENCODING, encoding_for, tiktoken_counter
from agent.window import TokenCounter

REMOTE_RETRIES = 2  # transient failures only (connection, 408/409/429/5xx), with backoff


class CompatibleBackend(Backend):
    """An OpenAI-compatible server at `base_url`: often a small local model, so a modest cap."""

    default_model = "default"
    default_reply_tokens = 1024

    def __init__(self, base_url: str | None, api_key: str | None) -> None:
        super().__init__()
        self.base_url = base_url
        self.api_key = api_key

    def describe(self) -> str:
        """Name the server."""
        return f"OpenAI-compatible server at {self.base_url}"

    def _new_chat_model(self, model: str, temperature: float, reply_cap: int) -> BaseChatModel:
        """A streaming ChatOpenAI that records usage and retries transient failures."""
        return ChatOpenAI(
            model=model,
            temperature=temperature,
            max_completion_tokens=reply_cap,
            base_url=self.base_url,
            api_key=self.api_key or "not-needed",  # type: ignore[arg-type]
            stream_usage=True,
            max_retries=REMOTE_RETRIES,
        )

    def count_tokens(self, context: Context) -> TokenCounter:
        """Count like OpenAI for an OpenAI model name, else approximately."""
        encoding = encoding_for(self.model_name(context))
        return tiktoken_counter(encoding) if encoding else count_tokens_approximately


class OpenAIBackend(CompatibleBackend):
    """OpenAI itself: tiktoken counts every model, and replies may be long (it does not loop)."""

    default_model = "gpt-4o-mini"
    default_reply_tokens = 4096

    def __init__(self, api_key: str) -> None:
        super().__init__(None, api_key)

    def describe(self) -> str:
        """Just "OpenAI"."""
        return "OpenAI"

    def count_tokens(self, context: Context) -> TokenCounter:
        """Count like OpenAI, with o200k_base for model names tiktoken does not know yet."""
        return tiktoken_counter(encoding_for(self.model_name(context)) or FALLBACK_ENCODING)
