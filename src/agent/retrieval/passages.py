"""Passages: what a retriever found for this turn, shown to the model but never stored as user text.

The `retrieve` node stores them in the state's `passages` key (replaced every turn); `call_model`
appends them to the persona's system message and cites their sources in the reply's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from agent.state import Passage

SOURCES = "sources"
UNKNOWN_SOURCE = "unknown"
PASSAGES_HEADER = (
    "Passages from the documents that may help with the latest message. Use them when they are "
    "relevant, say so when they do not contain the answer, and mention the source names you used."
)


def document_source(document: Document) -> str:
    """The name a citation uses: the document's `source` metadata (file name), else 'unknown'."""
    for key in ("source", "file_path", "path", "url"):
        value = document.metadata.get(key)
        if value:
            return str(value)
    return UNKNOWN_SOURCE


def to_passages(documents: Sequence[Document], max_chars: int) -> list[Passage]:
    """Turn retrieved documents into passages, best first, within a character budget.

    The budget keeps the system prompt from crowding the window out of a small model's context;
    the best passage is always kept (shortened if it alone is over budget).
    """
    passages: list[Passage] = []
    used = 0
    for document in documents:
        text = document.page_content.strip()
        if not text:
            continue
        if passages and used + len(text) > max_chars:
            break
        text = text[:max_chars]
        passages.append(
            Passage(
                source=document_source(document),
                section=str(document.metadata.get("section", "")),
                text=text,
            )
        )
        used += len(text)
    return passages


def passages_prompt(passages: Sequence[Passage]) -> str:
    """The block appended to the system message: numbered passages with their sources."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        where = passage["source"] + (f" > {passage['section']}" if passage["section"] else "")
        blocks.append(f"[{number}] {where}\n{passage['text']}")
    return PASSAGES_HEADER + "\n\n" + "\n\n".join(blocks)


def with_passages(messages: list[BaseMessage], passages: Sequence[Passage]) -> list[BaseMessage]:
    """Append the passages to the leading system message, keeping it first and single."""
    if not passages:
        return messages
    extra = passages_prompt(passages)
    if messages and isinstance(messages[0], SystemMessage):
        system = SystemMessage(content=f"{messages[0].text}\n\n{extra}")
        return [system, *messages[1:]]
    return [SystemMessage(content=extra), *messages]


def sources(passages: Sequence[Passage]) -> list[str]:
    """The distinct sources of the passages, best-ranked first."""
    return list(dict.fromkeys(passage["source"] for passage in passages))


def cite(reply: BaseMessage, passages: Sequence[Passage]) -> BaseMessage:
    """Record which sources the model was shown in the reply's `response_metadata['sources']`."""
    if not passages or not isinstance(reply, AIMessage):
        return reply
    metadata = {**reply.response_metadata, SOURCES: sources(passages)}
    return reply.model_copy(update={"response_metadata": metadata})
