"""Per-user authorization against a real `langgraph dev` with static tokens and JWTs configured."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent.server.dev import ServerProcess
from tests.integration.server_harness import start_dev_server, user_message

pytestmark = pytest.mark.integration

SECRET = "test-only-jwt-secret-0123456789abcdef"
OTHER_SECRET = "some-other-secret-0123456789abcdef"
TOKENS = {"alice": "tok-alice-7c1d", "bob": "tok-bob-93fa"}


def signed(claims: dict[str, Any], key: str = SECRET) -> str:
    """An HS256 JWT; expires in a minute unless the claims say otherwise."""
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm="HS256")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A dev server with a static token map for alice and bob and HS256 JWTs for anyone."""
    running = start_dev_server(
        tmp_path_factory.mktemp("auth-server"),
        env={
            "AGENT_AUTH_TOKENS": ",".join(f"{token}:{user}" for user, token in TOKENS.items()),
            "AGENT_JWT_SECRET": SECRET,
            "AGENT_JWT_AUDIENCE": "agent",
        },
        jobs=2,
    )
    yield running
    running.stop()


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client, for status codes."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def sdk(server: ServerProcess, token: str) -> LangGraphClient:
    """An SDK client sending `Authorization: Bearer <token>`."""
    return get_client(url=server.url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def alice(server: ServerProcess) -> AsyncIterator[LangGraphClient]:
    async with sdk(server, TOKENS["alice"]) as client:
        yield client


@pytest.fixture
async def bob(server: ServerProcess) -> AsyncIterator[LangGraphClient]:
    async with sdk(server, TOKENS["bob"]) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-known-token"},
        {"Authorization": f"Basic {TOKENS['alice']}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {signed({'sub': 'eve'}, key=OTHER_SECRET)}"},
        {"Authorization": f"Bearer {signed({'sub': 'eve', 'exp': int(time.time()) - 3600})}"},
        {"Authorization": f"Bearer {signed({'sub': 'eve', 'aud': 'another-service'})}"},
        {"Authorization": f"Bearer {jwt.encode({'sub': 'eve', 'aud': 'agent'}, SECRET)}"},
        {"x-auth-scheme": "langsmith"},  # the dev server's Studio bypass stays off
    ],
    ids=[
        "no-header",
        "unknown-token",
        "wrong-scheme",
        "empty-token",
        "jwt-bad-signature",
        "jwt-expired",
        "jwt-wrong-audience",
        "jwt-without-exp",
        "studio-header",
    ],
)
async def test_requests_without_valid_credentials_get_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path, body in [
        ("POST", "/threads", {}),
        ("POST", "/threads/search", {}),
        ("POST", "/assistants/search", {}),
    ]:
        response = await http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)


async def test_threads_belong_to_their_creator(
    alice: LangGraphClient, bob: LangGraphClient
) -> None:
    thread = await alice.threads.create(metadata={"owner": "bob", "topic": "tea"})

    assert thread["metadata"]["owner"] == "alice"  # cannot be forged through metadata
    assert thread["metadata"]["topic"] == "tea"
    found = await bob.threads.search(metadata={"topic": "tea"})
    assert found == []
    mine = await alice.threads.search(metadata={"topic": "tea"})
    assert [t["thread_id"] for t in mine] == [thread["thread_id"]]


async def test_users_read_and_run_only_their_own_threads(
    server: ServerProcess, http: httpx.AsyncClient, alice: LangGraphClient
) -> None:
    thread_id = (await alice.threads.create())["thread_id"]
    reply = await alice.runs.wait(thread_id, "fake", input=user_message("secret plans"))
    assert "heard: secret plans" in reply["messages"][-1]["content"]

    as_bob = {"Authorization": f"Bearer {TOKENS['bob']}"}
    run = {"assistant_id": "fake", "input": user_message("let me in")}
    attempts = [
        ("GET", f"/threads/{thread_id}", None),
        ("GET", f"/threads/{thread_id}/state", None),
        ("POST", f"/threads/{thread_id}/history", {}),
        ("PATCH", f"/threads/{thread_id}", {"metadata": {"owner": "bob"}}),
        ("POST", f"/threads/{thread_id}/runs", run),
        ("POST", f"/threads/{thread_id}/runs/wait", run),
        ("GET", f"/threads/{thread_id}/runs", None),
        ("DELETE", f"/threads/{thread_id}", None),
    ]
    for method, path, body in attempts:
        response = await http.request(method, path, json=body, headers=as_bob)
        assert response.status_code in (403, 404), (method, path, response.status_code)

    state = await alice.threads.get_state(thread_id)
    contents = [m["content"] for m in state["values"]["messages"]]
    assert contents[0] == "secret plans" and len(contents) == 2  # bob changed nothing
    assert (await alice.threads.get(thread_id))["metadata"]["owner"] == "alice"


async def test_a_valid_jwt_names_the_user(server: ServerProcess, bob: LangGraphClient) -> None:
    async with sdk(server, signed({"sub": "carol", "aud": "agent"})) as carol:
        thread = await carol.threads.create()
        reply = await carol.runs.wait(thread["thread_id"], "fake", input=user_message("hi"))

    assert thread["metadata"]["owner"] == "carol"
    assert "heard: hi" in reply["messages"][-1]["content"]
    with pytest.raises(Exception) as raised:
        await bob.threads.get(thread["thread_id"])
    assert raised.value.response  # type: ignore[attr-defined].status_code == 404


async def test_assistants_are_shared_but_changed_only_by_their_creator(
    alice: LangGraphClient, bob: LangGraphClient
) -> None:
    tutor = await alice.assistants.create("fake", context={"persona": "tutor"}, name="tutor-a")
    thread_id = (await bob.threads.create())["thread_id"]

    reply = await bob.runs.wait(thread_id, tutor["assistant_id"], input=user_message("teach me"))
    with pytest.raises(Exception) as raised:
        await bob.assistants.update(tutor["assistant_id"], context={"persona": "assistant"})

    assert "Python tutor" in reply["messages"][-1]["content"]
    assert raised.value.response  # type: ignore[attr-defined].status_code in (403, 404)
    assert (await alice.assistants.get(tutor["assistant_id"]))["context"] == {"persona": "tutor"}


async def test_store_items_are_scoped_to_their_user(
    alice: LangGraphClient, bob: LangGraphClient
) -> None:
    await alice.store.put_item(["notes"], "plan", {"text": "alice's plan"})

    mine = await alice.store.get_item(["notes"], "plan")
    theirs = await bob.store.search_items(["notes"])

    assert mine["value"] == {"text": "alice's plan"}
    assert theirs["items"] == []
