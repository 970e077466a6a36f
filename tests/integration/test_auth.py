"""Per-user authorization against a real `langgraph dev` with static tokens and JWTs configured."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent.server.dev import ServerProcess
from tests.integration.server_harness import REPO, start_dev_server, user_message

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


# --- issue 13: store scoping, immutable owners, thread deletion, odd ids, x-api-key -----------


def as_user(server: ServerProcess, user: str) -> LangGraphClient:
    """An SDK client for any user name, through a signed JWT."""
    return sdk(server, signed({"sub": user, "aud": "agent"}))


async def probe(client: LangGraphClient, thread_id: str, plant_record: bool = False) -> Any:
    """What the server's store holds for a thread (archive and record), read by the probe graph."""
    probe_thread = (await client.threads.create())["thread_id"]
    request = json.dumps({"thread_id": thread_id, "plant_record": plant_record})
    result = await client.runs.wait(probe_thread, "probe", input=user_message(request))
    return json.loads(result["messages"][-1]["content"])


async def thread_with_archive(client: LangGraphClient, texts: list[str]) -> str:
    """A thread whose older turns were evicted to the archive (a one-exchange window)."""
    thread_id = str((await client.threads.create())["thread_id"])
    for text in texts:
        await client.runs.wait(
            thread_id, "fake", input=user_message(text), context={"max_turns": 1}
        )
    return thread_id


def archived_entry(text: str) -> dict[str, Any]:
    """A stored archive entry (message_to_dict's shape) carrying `text`."""
    return {"type": "human", "data": {"type": "human", "content": text, "id": "forged"}}


@pytest.mark.parametrize("attacker", ["transcript", "threads", "users"])
async def test_no_user_id_reaches_the_graphs_own_store_namespaces(
    server: ServerProcess, alice: LangGraphClient, attacker: str
) -> None:
    thread_id = await thread_with_archive(alice, ["alice's first secret", "second", "third"])
    before = await probe(alice, thread_id, plant_record=True)
    assert before["archived"][0] == "alice's first secret"  # the setup did archive something

    async with as_user(server, attacker) as mallory:
        seen = [
            await mallory.store.search_items(["transcript"], limit=100),
            await mallory.store.search_items(["threads"], limit=100),
            await mallory.store.search_items([], limit=100),
            await mallory.store.list_namespaces(limit=1000),
            await mallory.store.list_namespaces(prefix=["transcript"], limit=1000),
            await mallory.store.get_item(["transcript", thread_id], "000000000000"),
            await mallory.store.get_item(["threads"], thread_id),
        ]
        await mallory.store.put_item(
            ["transcript", thread_id], "000000000000", archived_entry("forged by mallory")
        )
        await mallory.store.put_item(["threads"], thread_id, {"title": "forged"})
        await mallory.store.delete_item(["transcript", thread_id], "000000000001")

    after = await probe(alice, thread_id)
    assert thread_id not in json.dumps(seen) and "secret" not in json.dumps(seen)
    assert after == before  # nothing overwritten, nothing deleted


async def test_user_ids_that_spell_other_roots_stay_in_their_own(
    server: ServerProcess, alice: LangGraphClient
) -> None:
    await alice.store.put_item(["notes"], "plan", {"text": "alice's plan"})
    users = ["users", "alice.", "ALICE", "a%2Eb", "a.b"]
    for user in users:
        async with as_user(server, user) as other:
            await other.store.put_item(["notes"], "plan", {"text": f"{user}'s plan"})
            attempts = [
                await other.store.get_item(["users", "alice", "notes"], "plan"),
                await other.store.search_items(["users", "alice"], limit=100),
                await other.store.search_items(["users"], limit=100),
                await other.store.list_namespaces(prefix=["users"], limit=1000),
            ]
            mine = await other.store.get_item(["notes"], "plan")
        assert "alice's plan" not in json.dumps(attempts), user
        assert mine is not None and mine["value"] == {"text": f"{user}'s plan"}, user
    own = await alice.store.get_item(["notes"], "plan")
    assert own is not None and own["value"] == {"text": "alice's plan"}


async def test_a_user_keeps_full_use_of_their_own_store_items(server: ServerProcess) -> None:
    async with as_user(server, "ada.lovelace@example.com") as ada:  # dots: an email as `sub`
        await ada.store.put_item(["memories"], "m1", {"text": "likes tea"})
        await ada.store.put_item(["notes", "2024"], "n1", {"text": "draft"})
        got = await ada.store.get_item(["memories"], "m1")
        found = await ada.store.search_items(["memories"])
        listed = await ada.store.list_namespaces()
        shallow = await ada.store.list_namespaces(max_depth=1)
        # The namespaces the server reports can be used as they are.
        reported = found["items"][0]["namespace"]
        await ada.store.put_item(reported, "m1", {"text": "likes green tea"})
        updated = await ada.store.get_item(["memories"], "m1")
        await ada.store.delete_item(["memories"], "m1")
        gone = await ada.store.get_item(["memories"], "m1")

    assert got is not None and got["value"] == {"text": "likes tea"}
    assert [item["key"] for item in found["items"]] == ["m1"]
    root = reported[:2]
    assert root[0] == "users" and len(reported) == 3 and reported[2] == "memories"
    assert sorted(map(tuple, listed["namespaces"])) == [
        (*root, "memories"),
        (*root, "notes", "2024"),
    ]
    assert sorted(map(tuple, shallow["namespaces"])) == [(*root, "memories"), (*root, "notes")]
    assert updated is not None and updated["value"] == {"text": "likes green tea"}
    assert gone is None


async def test_the_owner_never_changes_after_create(
    server: ServerProcess, alice: LangGraphClient, bob: LangGraphClient
) -> None:
    thread_id = (await alice.threads.create(metadata={"topic": "planted"}))["thread_id"]
    patched = await alice.threads.update(thread_id, metadata={"owner": "bob", "topic": "x"})
    assistant = await alice.assistants.create("fake", name="mine", metadata={"owner": "bob"})
    moved = await alice.assistants.update(assistant["assistant_id"], metadata={"owner": "bob"})
    cron = await alice.crons.create_for_thread(
        thread_id, "fake", schedule="0 0 1 1 *", input=user_message("yearly")
    )
    cron_moved = await alice.crons.update(cron["cron_id"], metadata={"owner": "bob"})

    assert patched["metadata"]["owner"] == "alice" and patched["metadata"]["topic"] == "x"
    assert await bob.threads.search(metadata={"topic": "x"}) == []
    assert assistant["metadata"]["owner"] == "alice" and moved["metadata"]["owner"] == "alice"
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await bob.assistants.update(assistant["assistant_id"], name="bob's now")
    assert raised.value.response.status_code in (403, 404)
    assert cron_moved["metadata"]["owner"] == "alice"
    assert [c["cron_id"] for c in await bob.crons.search()] == []
    assert [c["cron_id"] for c in await alice.crons.search()] == [cron["cron_id"]]
    await alice.crons.delete(cron["cron_id"])


async def test_deleting_a_thread_deletes_what_the_project_stored_for_it(
    alice: LangGraphClient, bob: LangGraphClient
) -> None:
    thread_id = await thread_with_archive(alice, ["one", "two", "three"])
    stored = await probe(alice, thread_id, plant_record=True)
    assert stored["archived"] and stored["record"] is not None

    with pytest.raises(httpx.HTTPStatusError) as raised:
        await bob.threads.delete(thread_id)
    kept = await probe(alice, thread_id)
    await alice.threads.delete(thread_id)
    after = await probe(alice, thread_id)

    assert raised.value.response.status_code == 404
    assert kept == stored  # bob's attempt deleted nothing
    assert after == {"archived": [], "record": None}


async def test_pruning_threads_deletes_what_the_project_stored_for_them(
    http: httpx.AsyncClient, alice: LangGraphClient
) -> None:
    thread_id = await thread_with_archive(alice, ["one", "two", "three"])
    stored = await probe(alice, thread_id, plant_record=True)
    assert stored["archived"] and stored["record"] is not None
    prune = {"thread_ids": [thread_id], "strategy": "delete"}

    refused = await http.post(
        "/threads/prune", json=prune, headers={"Authorization": f"Bearer {TOKENS['bob']}"}
    )
    kept = await probe(alice, thread_id)
    pruned = await http.post(
        "/threads/prune", json=prune, headers={"Authorization": f"Bearer {TOKENS['alice']}"}
    )
    after = await probe(alice, thread_id)

    assert refused.status_code == 404
    assert kept == stored  # bob's attempt deleted nothing
    assert pruned.status_code == 200 and pruned.json() == {"pruned_count": 1}
    assert after == {"archived": [], "record": None}


async def test_creating_a_thread_with_a_taken_id_tells_nothing_about_its_owner(
    http: httpx.AsyncClient, alice: LangGraphClient, bob: LangGraphClient
) -> None:
    bobs = (await bob.threads.create(metadata={"topic": "bob's"}))["thread_id"]
    alices = (await alice.threads.create())["thread_id"]
    as_alice = {"Authorization": f"Bearer {TOKENS['alice']}"}

    other = await http.post("/threads", json={"thread_id": bobs}, headers=as_alice)
    own = await http.post("/threads", json={"thread_id": alices}, headers=as_alice)

    assert other.status_code == own.status_code == 409
    assert other.json()["detail"].replace(bobs, "ID") == own.json()["detail"].replace(alices, "ID")
    assert "bob" not in other.text
    run = {"assistant_id": "fake", "input": user_message("hi"), "if_not_exists": "create"}
    hijack = await http.post(f"/threads/{bobs}/runs/wait", json=run, headers=as_alice)
    assert hijack.status_code == 404


OPEN_META_ROUTES = ["/ok", "/info", "/metrics", "/docs", "/openapi.json"]


async def test_only_the_documented_meta_routes_answer_without_a_token_and_show_no_user_data(
    server: ServerProcess, http: httpx.AsyncClient, alice: LangGraphClient
) -> None:
    thread_id = await thread_with_archive(alice, ["very private words"])
    docs = (REPO / "docs" / "server.md").read_text(encoding="utf-8")

    bodies = {}
    for path in OPEN_META_ROUTES:
        response = await http.get(path)
        assert response.status_code == 200, path
        assert f"`{path}`" in docs, f"{path} answers without a token but docs/server.md says not"
        bodies[path] = response.text
    bodies["/metrics?format=json"] = (await http.get("/metrics?format=json")).text

    for path, body in bodies.items():
        assert thread_id not in body and "very private" not in body and "alice" not in body, path
    for path in [
        "/threads/search",
        "/assistants/search",
        "/runs/crons/search",
        "/store/items/search",
    ]:
        assert (await http.post(path, json={})).status_code == 401, path


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": TOKENS["alice"]},
        {"X-Api-Key": TOKENS["alice"]},
        {"x-api-key": "jwt-for-alice"},  # signed when the test runs (it expires in a minute)
        {"x-api-key": TOKENS["alice"], "Authorization": f"Bearer {TOKENS['alice']}"},
        # The Python SDK sends LANGSMITH_API_KEY as x-api-key by itself: Bearer wins.
        {"x-api-key": "lsv2-some-langsmith-key", "Authorization": f"Bearer {TOKENS['alice']}"},
    ],
    ids=["static-token", "header-case", "jwt", "both-agreeing", "bearer-wins"],
)
async def test_the_token_may_come_as_x_api_key(
    http: httpx.AsyncClient, alice: LangGraphClient, headers: dict[str, str]
) -> None:
    mine = (await alice.threads.create(metadata={"topic": "api-key"}))["thread_id"]
    if headers.get("x-api-key") == "jwt-for-alice":
        headers = {"x-api-key": signed({"sub": "alice", "aud": "agent"})}

    found = await http.post(
        "/threads/search", json={"metadata": {"topic": "api-key"}}, headers=headers
    )

    assert found.status_code == 200, found.text
    assert mine in [t["thread_id"] for t in found.json()]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "not-a-known-token"},
        {"x-api-key": ""},
        {"x-api-key": signed({"sub": "eve", "aud": "agent"}, key=OTHER_SECRET)},
        {"x-api-key": f"Bearer {TOKENS['alice']}"},
        {"x-api-key": TOKENS["alice"], "Authorization": "Bearer not-a-known-token"},
        {"x-api-key": TOKENS["alice"], "Authorization": f"Basic {TOKENS['alice']}"},
    ],
    ids=["unknown", "empty", "jwt-bad-signature", "scheme-inside", "bad-bearer", "bad-scheme"],
)
async def test_x_api_key_gets_the_same_checks(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await http.post("/threads/search", json={}, headers=headers)
    assert response.status_code == 401, response.text
