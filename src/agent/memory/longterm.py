"""Long-term memory: facts about a user, kept in the store across that user's conversations.

Facts live under `("users", label(user_id), "memories")`, one item per topic (the key is the
topic's label), so a newer fact on a topic replaces the older one ("home city: Lyon" replaces
"home city: Paris") instead of keeping both. An item's value is
`{"topic": "home city", "memory": "home city: Lyon", "source": "<thread id>"}`; items a server
client writes need only `memory` (the key then stands for the topic). On the LangGraph server
that namespace is the user's own `/store` root, so users list, edit and delete their memories
there too.

    from agent.memory import open_memory
    from agent.memory.longterm import UserMemory

    with open_memory() as memory:
        facts = UserMemory(memory.store, "priya")
        facts.put("diet", "vegetarian")
        for fact in facts.facts():
            print(fact.key, fact.text)
        facts.forget("diet")
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, Item, PutOp

from agent.memory.namespaces import label, unlabel

log = logging.getLogger(__name__)

USERS = "users"
MEMORIES = "memories"
FIELD = "memory"  # "topic: fact", what the store's vector index embeds (nothing else has it)
MAX_TOPIC_CHARS = 40
MAX_TOPIC_WORDS = 5
MAX_FACT_CHARS = 200
MAX_LINE_CHARS = MAX_TOPIC_CHARS + 2 + MAX_FACT_CHARS  # the `memory` field: "topic: fact"
MAX_FACTS_PER_MESSAGE = 5
VECTOR = "vector"  # a fact's embedding, when the store has no index of its own
BUNDLED: Literal["bundled"] = "bundled"
PAGE = 500
NONE_REPLIES = {"none", "none.", "nothing", "n/a", "-"}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


@dataclass(frozen=True)
class Fact:
    """One remembered fact: its key (the topic's label), topic, text, source thread and times."""

    key: str
    topic: str
    text: str
    source: str
    created_at: datetime
    updated_at: datetime

    @property
    def line(self) -> str:
        """How the model sees it: 'topic: text'."""
        return f"{self.topic}: {self.text}"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready fields (times as ISO 8601)."""
        return {
            "key": self.key,
            "topic": self.topic,
            "text": self.text,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def namespace(user_id: str) -> tuple[str, str, str]:
    """The store namespace of one user's memories."""
    return (USERS, label(user_id), MEMORIES)


def normal_topic(topic: str) -> str:
    """A topic as stored: lower case, single spaces, no surrounding punctuation."""
    return " ".join(topic.lower().split()).strip(" .,:;!?\"'*_`")


def topic_key(topic: str) -> str:
    """The item key of a topic (its normal form, labelled so any text is a valid key).

    Raises:
        ValueError: If the topic is empty once normalized.
    """
    normal = normal_topic(topic)
    if not normal:
        raise ValueError(f"A memory needs a topic, got {topic!r}.")
    return label(normal)


def check_fact(topic: str, text: str) -> tuple[str, str]:
    """A (topic, text) pair fit to store, or ValueError saying what is wrong."""
    normal, text = normal_topic(topic), " ".join(str(text).split())
    if not normal or len(normal) > MAX_TOPIC_CHARS or "\x00" in normal:
        raise ValueError(f"A memory topic must be 1-{MAX_TOPIC_CHARS} characters, got {topic!r}.")
    if not text or len(text) > MAX_FACT_CHARS or "\x00" in text:
        raise ValueError(f"A memory must be 1-{MAX_FACT_CHARS} characters of text.")
    return normal, text


def fact_from_item(item: Item) -> Fact | None:
    """The fact an item holds, or None for an item that is not a valid memory.

    Server clients can write anything into their namespace, so nothing is trusted: a value
    without a string `memory` field, or one too long to show, is skipped, never an error.
    """
    value = item.value
    line, topic = value.get(FIELD), value.get("topic")
    if not isinstance(line, str) or not line.strip() or len(line) > MAX_LINE_CHARS:
        return None
    topic = normal_topic(topic if isinstance(topic, str) else unlabel(item.key))
    line = " ".join(line.split())
    text = line[len(topic) + 1 :].strip() if line.lower().startswith(topic + ":") else line
    source = value.get("source")
    return Fact(
        key=item.key,
        topic=topic[:MAX_TOPIC_CHARS] or "note",
        text=text or line,
        source=source if isinstance(source, str) else "",
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def bundled_embeddings() -> Embeddings | None:
    """The bundled MiniLM (the `rag` extra) for ranking facts by meaning, or None if absent."""
    try:
        from agent.retrieval.embeddings import MiniLMEmbeddings, bundled_model_path

        bundled_model_path()
    except ImportError:
        return None
    return MiniLMEmbeddings()


def resolve_embeddings(embeddings: Embeddings | None | Literal["bundled"]) -> Embeddings | None:
    """The embedding model meant by an `embeddings=` argument ("bundled": MiniLM if installed)."""
    if isinstance(embeddings, str):
        if embeddings != BUNDLED:
            raise ValueError(
                f"embeddings must be an Embeddings, None or 'bundled', not {embeddings!r}."
            )
        return bundled_embeddings()
    return embeddings


def encode_vector(vector: Sequence[float]) -> str:
    """A vector as base64 float32 (little-endian): 2 KB of JSON-safe text for 384 dimensions."""
    data = array("f", vector)
    if sys.byteorder != "little":
        data.byteswap()
    return base64.b64encode(data.tobytes()).decode("ascii")


def decode_vector(text: object) -> list[float] | None:
    """The vector `encode_vector` wrote, or None for anything else (clients write values)."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw or len(raw) % 4:
        return None
    data = array("f")
    data.frombytes(raw)
    if sys.byteorder != "little":
        data.byteswap()
    return list(data)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity (0 for vectors of different sizes or zero length)."""
    if len(a) != len(b):
        return 0.0
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


def newest_first(facts: Sequence[Fact]) -> list[Fact]:
    """Facts, most recently updated first."""
    return sorted(facts, key=lambda fact: fact.updated_at, reverse=True)


def has_index(store: BaseStore) -> bool:
    """Whether the store ranks searches by meaning (a vector index is configured)."""
    return bool(getattr(store, "index_config", None))


class UserMemory:
    """One user's long-term memory on any LangGraph store: facts, put, forget, clear, search.

    Search ranks facts by meaning: through the store's own vector index when it has one (e.g.
    a PostgresStore with pgvector, or the server's store configured with an index), else with
    `embeddings`, whose vector each fact carries in its value (`vector`, base64 float32) and
    which are compared here, in Python; a user's facts are few. Without either: by recency.

    Args:
        store: The store (the Chatbot's `memory.store`, or the server's).
        user_id: Whose memory; any non-empty text (emails and dotted ids included).
        embeddings: The embedding model ("bundled": MiniLM if the `rag` extra is installed;
            None: no ranking by meaning).

    Raises:
        ValueError: If `user_id` is empty.
    """

    def __init__(
        self,
        store: BaseStore,
        user_id: str,
        embeddings: Embeddings | None | Literal["bundled"] = BUNDLED,
    ) -> None:
        if not isinstance(user_id, str) or not user_id.strip():
            raise ValueError(f"Long-term memory needs a non-empty user id, got {user_id!r}.")
        self.store = store
        self.user_id = user_id
        self.namespace = namespace(user_id)
        self.embeddings = resolve_embeddings(embeddings)

    def _items(self) -> list[Item]:
        """Every item in the user's namespace, a page at a time."""
        items: list[Item] = []
        while page := self.store.search(self.namespace, limit=PAGE, offset=len(items)):
            items.extend(page)
            if len(page) < PAGE:
                break
        return items

    def facts(self) -> list[Fact]:
        """The user's facts, most recently updated first."""
        found = (fact_from_item(item) for item in self._items())
        return newest_first([fact for fact in found if fact is not None])

    def get(self, topic: str) -> Fact | None:
        """The fact on a topic (or with that key), or None."""
        for key in dict.fromkeys([topic_key(topic), topic]):
            item = self.store.get(self.namespace, key)
            if item is not None:
                return fact_from_item(item)
        return None

    def put(self, topic: str, text: str, *, source: str = "") -> Fact:
        """Remember (or replace) the fact on a topic.

        Args:
            topic: What the fact is about ("name", "home city"); same topic, same item.
            text: The fact ("Priya", "Lyon").
            source: The thread it was learned in ('' when set by hand).

        Returns:
            The stored fact.

        Raises:
            ValueError: For an empty or over-long topic or text (limits in this module).
        """
        normal, text = check_fact(topic, text)
        key = topic_key(normal)
        value = {"topic": normal, FIELD: f"{normal}: {text}", "source": source}
        vector = self._vector(value[FIELD], query=False)
        if vector is not None:
            value[VECTOR] = encode_vector(vector)
        self.store.put(self.namespace, key, value)
        stored = self.store.get(self.namespace, key)
        fact = fact_from_item(stored) if stored is not None else None
        if fact is None:  # the store lost the write: say so rather than return a guess
            raise RuntimeError(f"The store did not keep memory {key!r}.")
        return fact

    def forget(self, topic: str) -> bool:
        """Delete the fact on a topic (or with that key); False if there was none."""
        for key in dict.fromkeys([topic_key(topic), topic]):
            if self.store.get(self.namespace, key) is not None:
                self.store.delete(self.namespace, key)
                return True
        return False

    def clear(self) -> int:
        """Delete every item in the user's memory namespace; how many were deleted."""
        deleted = 0
        while items := self.store.search(self.namespace, limit=PAGE):
            self.store.batch([PutOp(self.namespace, item.key, None) for item in items])
            deleted += len(items)
        return deleted

    def _vector(self, text: str, *, query: bool) -> list[float] | None:
        """The text's embedding, when this memory ranks by its own vectors (else None).

        An embedding failure only costs the ranking: the fact is stored, the search falls
        back to recency.
        """
        if self.embeddings is None or has_index(self.store):
            return None
        try:
            if query:
                return self.embeddings.embed_query(text)
            return self.embeddings.embed_documents([text])[0]
        except Exception:
            log.warning("Embedding a memory failed; ranking by recency.", exc_info=True)
            return None

    def _by_meaning(self, query: str, limit: int) -> list[Fact]:
        """The facts nearest to `query` (empty when nothing can rank them)."""
        if has_index(self.store):
            ranked = self.store.search(self.namespace, query=query, limit=limit)
            return [fact for item in ranked if (fact := fact_from_item(item)) is not None]
        wanted = self._vector(query, query=True)
        if wanted is None:
            return []
        scored: list[tuple[float, Fact]] = []
        for item in self._items():
            fact, vector = fact_from_item(item), decode_vector(item.value.get(VECTOR))
            if fact is not None and vector is not None:
                scored.append((cosine(wanted, vector), fact))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return [fact for _, fact in scored[:limit]]

    def search(self, query: str, limit: int) -> list[Fact]:
        """The `limit` facts most relevant to `query`.

        By meaning (see the class), then, to fill up, the most recently updated ones.
        """
        found = self._by_meaning(query, limit) if query.strip() else []
        keys = {fact.key for fact in found}
        recent = [fact for fact in self.facts() if fact.key not in keys]
        return (found + recent)[:limit]

    def export(self) -> str:
        """The user's facts as JSON: {"user": ..., "memories": [...]}."""
        payload = {"user": self.user_id, "memories": [fact.to_dict() for fact in self.facts()]}
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def parse_facts(text: str, *, cut: bool = False) -> list[tuple[str, str]]:
    """The (topic, fact) pairs in an extractor's reply: one 'topic: fact' per line.

    Anything else is ignored (small models ramble): lines without a colon, topics longer than
    a few words, facts that are empty or over-long, 'NONE'. A reply cut by the length limit
    loses its last line. The last fact on a topic wins; at most MAX_FACTS_PER_MESSAGE.
    """
    lines = text.strip().splitlines()
    if cut and lines:
        lines = lines[:-1]
    facts: dict[str, tuple[str, str]] = {}
    for line in lines:
        line = _BULLET.sub("", line).strip()
        if line.lower() in NONE_REPLIES:
            continue
        topic, colon, fact = line.partition(":")
        if not colon or len(topic.split()) > MAX_TOPIC_WORDS:
            continue
        try:
            normal, fact = check_fact(topic, fact)
        except ValueError:
            continue
        if fact.lower() in NONE_REPLIES:
            continue
        facts.pop(normal, None)
        facts[normal] = (normal, fact)
    return list(facts.values())[-MAX_FACTS_PER_MESSAGE:]
