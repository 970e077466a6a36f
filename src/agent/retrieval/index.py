"""A real in-process vector index over markdown files, and a retriever that builds it lazily."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import PrivateAttr

from agent.retrieval.markdown import DEFAULT_CHUNK_CHARS, load_markdown

DEFAULT_K = 4


def vector_retriever(
    documents: Sequence[Document], embeddings: Embeddings, *, k: int = DEFAULT_K
) -> BaseRetriever:
    """Embed the documents into an in-memory vector store; retrieve the `k` nearest by cosine."""
    store = InMemoryVectorStore(embeddings)
    store.add_documents(list(documents))
    return store.as_retriever(search_kwargs={"k": k})


def project_docs(root: Path) -> list[Path]:
    """A project's README.md and docs/*.md, the corpus the RAG example answers from."""
    readme = [root / "README.md"] if (root / "README.md").is_file() else []
    return readme + sorted((root / "docs").glob("*.md"))


def markdown_retriever(
    paths: Iterable[Path],
    *,
    root: Path | None = None,
    embeddings: Embeddings | None = None,
    k: int = DEFAULT_K,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> BaseRetriever:
    """Chunk and index markdown files now (the bundled MiniLM model unless `embeddings` given)."""
    if embeddings is None:
        from agent.retrieval.embeddings import MiniLMEmbeddings

        embeddings = MiniLMEmbeddings()
    documents = load_markdown(paths, root=root, max_chars=chunk_chars)
    if not documents:
        raise ValueError("No markdown to index: the given paths hold no text.")
    return vector_retriever(documents, embeddings, k=k)


class LazyRetriever(BaseRetriever):
    """Builds the real retriever on the first query, so importing a graph stays fast."""

    build: Callable[[], BaseRetriever]
    _built: BaseRetriever | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def retriever(self) -> BaseRetriever:
        """The built retriever (built once, even with concurrent first queries)."""
        with self._lock:
            if self._built is None:
                self._built = self.build()
            return self._built

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.retriever().invoke(query, {"callbacks": run_manager.get_child()})
