"""What kinds of content a user message carries, and whether the model can read them.

A text-only model sent an image or a file part fails with a provider error that tells the user
nothing ("server error ... try again later"); checking first gives a clear client error instead.
What a model reads comes from its LangChain profile (`image_inputs`, `pdf_inputs`, ...); a
model without a profile (the embedded model, most OpenAI-compatible servers) reads text only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from agent.errors import UnsupportedContentError

KINDS = ("image", "pdf", "audio", "video")
PART_KINDS = {
    "text": "text",
    "image_url": "image",
    "image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "video": "video",
}


def part_kind(part: Any) -> str:
    """The kind of one content part: text, image, pdf, file, audio, video (or its own type)."""
    if isinstance(part, str):
        return "text"
    if not isinstance(part, Mapping):
        return type(part).__name__
    kind = str(part.get("type"))
    if kind == "file":
        mime = part.get("mime_type") or part.get("mimeType") or ""
        return "pdf" if mime == "application/pdf" else "file"
    return PART_KINDS.get(kind, kind)


def content_kinds(message: BaseMessage) -> set[str]:
    """The kinds of content in a message (a plain string is text)."""
    if isinstance(message.content, str):
        return {"text"}
    return {part_kind(part) for part in message.content}


def accepted_kinds(model: BaseChatModel) -> set[str]:
    """What the model reads, by its profile; text only when it has none."""
    profile: Mapping[str, Any] = model.profile or {}
    return {"text", *(kind for kind in KINDS if profile.get(f"{kind}_inputs"))}


def require_readable(
    model: BaseChatModel, messages: Iterable[BaseMessage], model_name: str
) -> None:
    """Raise UnsupportedContentError if a user message carries what the model cannot read.

    Args:
        model: The chat model about to be called.
        messages: The messages it would be sent (only user messages are checked).
        model_name: How errors name the model (e.g. its backend description).

    Raises:
        UnsupportedContentError: Naming the unreadable kinds and what the model reads.
    """
    accepted = accepted_kinds(model)
    unreadable = set().union(
        *(content_kinds(m) - accepted for m in messages if isinstance(m, HumanMessage))
    )
    if unreadable:
        raise UnsupportedContentError(model_name, unreadable, accepted)
