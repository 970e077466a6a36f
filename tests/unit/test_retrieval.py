"""Retrieval as a node: passages reach the system message (never the stored user text), cited."""

from __future__ import annotations

from pathlib import Path

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot, build_graph
from agent.retrieval import LazyRetriever, load_markdown, split_markdown, with_passages
from agent.retrieval.passages import passages_prompt, to_passages
from agent.state import Passage
from tests.fakes import FakeChat, ToolCallingFake, call_then_answer, chat_calls


class WordOverlapRetriever(BaseRetriever):
    """A real (if simple) retriever: documents ranked by words shared with the query."""

    documents: list[Document]
    k: int = 2
    queries: list[str] = []

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        self.queries.append(query)
        words = set(query.lower().split())
        ranked = sorted(
            self.documents, key=lambda d: -len(words & set(d.page_content.lower().split()))
        )
        return [d for d in ranked[: self.k] if words & set(d.page_content.lower().split())]


DOCS = [
    Document("the lighthouse keeper lives on the island", metadata={"source": "island.md"}),
    Document("bread needs flour water salt and yeast", metadata={"source": "bread.md"}),
    Document("the island ferry leaves at noon", metadata={"source": "ferry.md"}),
]


def retriever() -> WordOverlapRetriever:
    return WordOverlapRetriever(documents=DOCS, queries=[])


# --- the node in the graph ----------------------------------------------------------------


def test_retrieve_sits_between_trim_and_call_model() -> None:
    graph = build_graph(chat_model=FakeChat(), retriever=retriever())
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    assert {("recall", "retrieve"), ("retrieve", "call_model")} <= edges
    assert ("recall", "call_model") not in edges


def test_passages_go_to_the_system_message_and_sources_to_the_reply_metadata() -> None:
    model, found = FakeChat(), retriever()
    bot = Chatbot(chat_model=model, retriever=found, checkpointer=InMemorySaver())
    bot.say("when does the island ferry leave")
    sent = model.calls[-1]
    assert [m.type for m in sent] == ["system", "human"]
    assert "ferry leaves at noon" in sent[0].text and "ferry.md" in sent[0].text
    assert sent[0].text.startswith("You are")  # the persona's prompt stays first
    assert sent[1].text == "when does the island ferry leave"  # the user text is untouched
    stored = bot.graph.get_state(bot.config).values
    assert [m.text for m in stored["messages"]][0] == "when does the island ferry leave"
    assert stored["messages"][-1].response_metadata["sources"] == ["ferry.md", "island.md"]
    assert found.queries == ["when does the island ferry leave"]


def test_passages_are_replaced_each_turn_and_only_the_latest_message_is_searched() -> None:
    model, found = FakeChat(), retriever()
    bot = Chatbot(chat_model=model, retriever=found, checkpointer=InMemorySaver())
    bot.say("the lighthouse keeper")
    bot.say("bread with yeast")
    system = model.calls[-1][0].text
    assert "bread.md" in system and "lighthouse" not in system
    assert found.queries == ["the lighthouse keeper", "bread with yeast"]
    assert sum(isinstance(m, SystemMessage) for m in model.calls[-1]) == 1
    assert bot.history()[-1].response_metadata["sources"] == ["bread.md"]


def test_a_turn_with_nothing_found_has_no_passages_and_no_sources() -> None:
    model = FakeChat()
    bot = Chatbot(chat_model=model, retriever=retriever(), checkpointer=InMemorySaver())
    bot.say("the lighthouse keeper")
    bot.say("zebra")
    assert "Passages" not in model.calls[-1][0].text
    assert "sources" not in bot.history()[-1].response_metadata


def test_a_graph_without_retriever_ignores_passages_left_in_a_thread() -> None:
    saver, model = InMemorySaver(), FakeChat()
    with_rag = Chatbot(chat_model=model, retriever=retriever(), checkpointer=saver)
    with_rag.say("the island ferry")
    plain = Chatbot(chat_model=model, checkpointer=saver, thread_id=with_rag.thread_id)
    plain.say("and tomorrow?")
    assert "ferry.md" not in model.calls[-1][0].text


def test_retrieval_and_tools_together() -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    model = ToolCallingFake(script=call_then_answer("shout", lambda text: {"text": text}))
    bot = Chatbot(
        chat_model=model, tools=[shout], retriever=retriever(), checkpointer=InMemorySaver()
    )
    assert bot.say("bread with yeast") == "The tool said: BREAD WITH YEAST"
    assert all("bread.md" in call[0].text for call in model.calls)  # both loop calls see them
    assert bot.history()[-1].response_metadata["sources"] == ["bread.md"]


# --- passages ---------------------------------------------------------------------------


def test_passages_keep_the_best_one_and_respect_the_budget() -> None:
    docs = [Document("a" * 50, metadata={"source": "a.md"}), Document("b" * 50)]
    assert [p["source"] for p in to_passages(docs, max_chars=80)] == ["a.md"]
    assert [p["source"] for p in to_passages(docs, max_chars=100)] == ["a.md", "unknown"]
    assert to_passages(docs, max_chars=10)[0]["text"] == "a" * 10


def test_braces_in_passages_are_text_not_template_variables() -> None:
    passage = Passage(source="x.md", section="S", text="use {name} and {{x}}")
    out = with_passages([SystemMessage("Hi"), HumanMessage("q")], [passage])
    assert "use {name} and {{x}}" in out[0].text and out[0].text.startswith("Hi\n\n")
    assert passages_prompt([passage]).count("[1] x.md > S") == 1


# --- markdown chunking ----------------------------------------------------------------------


def test_markdown_splits_at_headings_with_their_path_and_never_inside_code() -> None:
    text = "# Guide\nIntro.\n## Install\n```bash\n# not a heading\npip install x\n```\n## Use\nRun."
    docs = split_markdown(text, "guide.md")
    assert [d.metadata["section"] for d in docs] == ["Guide", "Install", "Use"]  # title left out
    assert "# not a heading" in docs[1].page_content
    assert docs[1].page_content.startswith("Install\n\n")
    assert {d.metadata["source"] for d in docs} == {"guide.md"}


def test_with_several_top_level_headings_paths_keep_them() -> None:
    docs = split_markdown("# A\n## B\nb text\n# C\n### D\nd text", "x.md")
    assert [d.metadata["section"] for d in docs] == ["A > B", "C > D"]


def test_an_over_long_list_is_split_between_items_not_inside_one() -> None:
    items = [f"- item {n}: " + "detail " * 12 + "end" for n in range(10)]
    docs = split_markdown("## List\n" + "\n".join(items), "l.md", max_chars=300)
    assert len(docs) > 2
    for doc in docs:
        body = doc.page_content.split("\n\n", 1)[1]
        assert all(line.startswith("- item") and line.endswith("end") for line in body.splitlines())


def test_long_sections_are_packed_into_bounded_chunks_without_losing_text() -> None:
    paragraphs = [f"Paragraph {n} " + "word " * 40 for n in range(30)]
    docs = split_markdown("# Long\n\n" + "\n\n".join(paragraphs), "long.md", max_chars=500)
    assert len(docs) > 5 and all(len(d.page_content) <= 500 for d in docs)
    joined = " ".join(d.page_content for d in docs)
    assert all(f"Paragraph {n} " in joined for n in range(30))


def test_load_markdown_names_sources_relative_to_the_root(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\ntext", encoding="utf-8")
    docs = load_markdown([tmp_path / "docs" / "a.md"], root=tmp_path)
    assert docs[0].metadata["source"] == "docs/a.md"


def test_lazy_retriever_builds_once_on_first_query() -> None:
    built: list[int] = []

    def build() -> BaseRetriever:
        built.append(1)
        return retriever()

    lazy = LazyRetriever(build=build)
    assert built == []
    assert lazy.invoke("bread")[0].metadata["source"] == "bread.md"
    lazy.invoke("ferry")
    assert built == [1]


def test_the_window_leaves_room_for_the_passages_within_the_token_budget() -> None:
    long_doc = Document(" ".join(f"fact{n}" for n in range(600)), metadata={"source": "big.md"})
    model = FakeChat()
    bot = Chatbot(
        chat_model=model,
        retriever=WordOverlapRetriever(documents=[long_doc], k=1, queries=[]),
        checkpointer=InMemorySaver(),
        max_tokens=1400,
        max_turns=50,
    )
    for turn in range(12):
        bot.say(f"fact{turn} " + "and more words " * 12)
        sent = chat_calls(model.calls)[-1]
        assert "big.md" in sent[0].text  # the passages really were there
        assert count_tokens_approximately(sent) <= 1400
    assert len(sent) < 2 + 2 * 12  # old exchanges were evicted to make that room
