"""What a finished reply says about how it ended: cut by the length limit, in one place.

Every provider reports "stopped at the token limit" in its own words; `mark_cut` reads them all
and adds the project's own marks, so the CLI, exports and the continue API need only these:
`response_metadata["cut"] = True` and `response_metadata["reply_tokens"] = N`. The provider's
own finish reason stays where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

CUT = "cut"
REPLY_TOKENS = "reply_tokens"
# (response_metadata key, value) meaning "the reply hit its token limit", per provider.
LENGTH_STOPS: tuple[tuple[str, str], ...] = (
    ("finish_reason", "length"),  # OpenAI and OpenAI-compatible servers (llama.cpp, vLLM)
    ("stop_reason", "max_tokens"),  # Anthropic
    ("finish_reason", "MAX_TOKENS"),  # Gemini
    ("done_reason", "length"),  # Ollama's native API
)


def hit_length_limit(metadata: Mapping[str, Any]) -> bool:
    """Whether a reply's response_metadata says it stopped at its token limit."""
    return any(metadata.get(key) == value for key, value in LENGTH_STOPS)


def mark_cut(reply: BaseMessage, cap: int | None) -> BaseMessage:
    """The reply, marked `cut` with its token count if the length limit ended it.

    The count is the provider's `output_tokens`; without usage figures, a count the model
    reported itself, else the cap it ran into (None when even that is unknown).
    """
    if not isinstance(reply, AIMessage) or not hit_length_limit(reply.response_metadata):
        return reply
    usage = reply.usage_metadata
    tokens = (usage["output_tokens"] if usage else None) or reply.response_metadata.get(
        REPLY_TOKENS
    )
    tokens = tokens or cap
    metadata = {**reply.response_metadata, CUT: True, REPLY_TOKENS: tokens}
    return reply.model_copy(update={"response_metadata": metadata})
