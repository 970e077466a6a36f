"""The example graphs under a real `langgraph dev` (as langgraph.json lists them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langgraph_sdk import get_client

from agent.server.dev import ServerProcess
from tests.integration.server_harness import start_dev_server, user_message

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_dev_server(
        tmp_path_factory.mktemp("rag-server"), env={"AGENT_MAX_REPLY_TOKENS": "16"}, jobs=1
    )
    yield running
    running.stop()


async def test_the_server_serves_the_examples_and_the_rag_graph_cites_the_docs(
    server: ServerProcess,
) -> None:
    async with get_client(url=server.url) as client:
        graphs = {a["graph_id"] for a in await client.assistants.search(limit=50)}
        assert {"chatbot", "tool_assistant", "rag_assistant"} <= graphs
        thread = await client.threads.create()
        question = "How does the sliding window evict old messages?"
        result = await client.runs.wait(
            thread["thread_id"], "rag_assistant", input=user_message(question)
        )
    assert isinstance(result, dict), result
    reply = result["messages"][-1]
    assert reply["type"] == "ai" and reply["content"].strip()
    sources = reply["response_metadata"]["sources"]
    assert sources and all(source.endswith(".md") for source in sources)
    assert [m["type"] for m in result["messages"]] == ["human", "ai"]  # passages are not messages
    assert any("window" in p["text"].lower() for p in result["passages"])
