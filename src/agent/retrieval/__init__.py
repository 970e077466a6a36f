"""Retrieval as a graph node: any LangChain retriever, plus an offline markdown index.

`build_graph(retriever=...)` wires `trim -> retrieve -> call_model`; the passages go into the
system message (never into the stored user text) and their sources into the reply's
`response_metadata["sources"]`. The embedding model (module `embeddings`) loads only on use.
"""

from agent.retrieval.index import LazyRetriever, markdown_retriever, project_docs, vector_retriever
from agent.retrieval.markdown import load_markdown, split_markdown
from agent.retrieval.node import make_retrieve
from agent.retrieval.passages import SOURCES, cite, with_passages
from agent.state import Passage

__all__ = [
    "SOURCES",
    "LazyRetriever",
    "Passage",
    "cite",
    "load_markdown",
    "make_retrieve",
    "markdown_retriever",
    "project_docs",
    "split_markdown",
    "vector_retriever",
    "with_passages",
]
