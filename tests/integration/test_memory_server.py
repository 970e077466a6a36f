"""Long-term memory on a real `langgraph dev` with auth (issue 14): each user's, theirs only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent.server.dev import ServerProcess
from tests.integration.server_harness import FAKE_GRAPH, start_dev_server, user_message

pytestmark = pytest.mark.integration

TOKENS = {"alice": "tok-alice-5e2a", "bob": "tok-bob-0c7d"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A dev server with static tokens for alice and bob and the `memory` test graph."""
    running = start_dev_server(
        tmp_path_factory.mktemp("memory-server"),
        env={"AGENT_AUTH_TOKENS": ",".join(f"{t}:{user}" for user, t in TOKENS.items())},
        graphs={"memory": f"{FAKE_GRAPH}:memory"},
        jobs=2,
    )
    yield running
    running.stop()


@pytest.fixture
async def alice(server: ServerProcess) -> AsyncIterator[LangGraphClient]:
    async with get_client(
        url=server.url, headers={"Authorization": f"Bearer {TOKENS['alice']}"}
    ) as c:
        yield c


@pytest.fixture
async def bob(server: ServerProcess) -> AsyncIterator[LangGraphClient]:
    async with get_client(
        url=server.url, headers={"Authorization": f"Bearer {TOKENS['bob']}"}
    ) as c:
        yield c


async def turn(client: LangGraphClient, text: str, thread_id: str | None = None, **run: Any) -> str:
    """One run on the `memory` graph; the reply (the fake model answers with its system text)."""
    if thread_id is None:
        thread_id = str((await client.threads.create())["thread_id"])
    result = await client.runs.wait(thread_id, "memory", input=user_message(text), **run)
    return str(result["messages"][-1]["content"])


async def test_a_users_facts_are_learned_on_the_server_and_only_they_can_reach_them(
    alice: LangGraphClient, bob: LangGraphClient
) -> None:
    await turn(alice, "Hi, my name is Priya and I work as a nurse.")
    mine = await alice.store.search_items(["memories"], limit=100)
    assert sorted(item["value"]["memory"] for item in mine["items"]) == [
        "job: nurse",
        "name: Priya",
    ]
    root = mine["items"][0]["namespace"]
    assert root[0] == "users" and root[-1] == "memories"

    # A new thread of alice's recalls them; bob's threads never do.
    assert "- name: Priya" in await turn(alice, "What is my name?")
    assert "Priya" not in await turn(bob, "What is my name?")

    # Bob cannot list, search or read them, whatever namespace he spells.
    seen = [
        await bob.store.search_items(["memories"], limit=100),
        await bob.store.search_items([], limit=100),
        await bob.store.search_items(list(root), limit=100),
        await bob.store.search_items(["users", "alice", "memories"], limit=100),
        await bob.store.list_namespaces(limit=1000),
        await bob.store.list_namespaces(prefix=["users"], limit=1000),
        await bob.store.get_item(["memories"], "name"),
        await bob.store.get_item(list(root), "name"),
        await bob.store.get_item(["users", "alice", "memories"], "name"),
    ]
    assert "Priya" not in str(seen) and "nurse" not in str(seen)
    await bob.store.delete_item(["users", "alice", "memories"], "name")  # lands in his own root
    assert await alice.store.get_item(["memories"], "name") is not None


async def test_a_client_cannot_choose_whose_memory_a_run_uses(
    server: ServerProcess, alice: LangGraphClient, bob: LangGraphClient
) -> None:
    await turn(alice, "I'm vegetarian.")
    thread = (await bob.threads.create())["thread_id"]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        response = await http.post(
            f"/threads/{thread}/runs/wait",
            headers={"Authorization": f"Bearer {TOKENS['bob']}"},
            json={
                "assistant_id": "memory",
                "input": user_message("What do I eat?"),
                "context": {"user_id": "alice"},
            },
        )
    assert response.status_code == 422 and "user_id" in response.text
    assert "vegetarian" not in response.text


async def test_forgetting_through_the_store_reaches_the_next_thread(alice: LangGraphClient) -> None:
    await turn(alice, "I live in Paris.")
    assert "home city: Paris" in await turn(alice, "Where do I live?")
    found = await alice.store.search_items(["memories"], limit=100)
    [key] = [i["key"] for i in found["items"] if i["value"]["memory"] == "home city: Paris"]
    await alice.store.delete_item(["memories"], key)  # the key a client sees when it lists
    assert await alice.store.get_item(["memories"], key) is None
    assert "Paris" not in await turn(alice, "Where do I live?")
