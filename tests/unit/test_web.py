"""The web page's server side: static files, vendored libraries, settings, the queue wake-up."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from agent.context import Context
from agent.personas import load_personas
from agent.server import queue_wakeup, web

STATIC = web.STATIC


def own_static_files() -> list[Path]:
    """The page's hand-written files (not the vendored libraries)."""
    return [p for p in STATIC.rglob("*") if p.is_file() and "vendor" not in p.parts]


def test_vendored_libraries_match_their_manifest_and_carry_their_licences() -> None:
    manifest = json.loads((STATIC / "vendor" / "VENDOR.json").read_text(encoding="utf-8"))

    assert set(manifest) == {"markdown-it", "highlight.js"}
    for directory, info in manifest.items():
        assert info["version"] and info["license"] in {"MIT", "BSD-3-Clause"}
        assert "LICENSE" in info["files"]
        for name, digest in info["files"].items():
            data = (STATIC / "vendor" / directory / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{directory}/{name} was modified"


def test_the_page_loads_nothing_from_another_origin() -> None:
    remote = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|@import|url\(\s*["']?https?:""")
    for path in own_static_files():
        text = path.read_text(encoding="utf-8")
        assert not remote.search(text), f"{path.name} refers to another origin"
        assert "fonts.googleapis" not in text


def test_every_script_and_stylesheet_the_page_names_is_shipped() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    named = re.findall(r'(?:src|href)="/chat/static/([^"]+)"', html)

    assert len(named) >= 4
    for relative in named:
        assert (STATIC / relative).is_file(), relative
    for module in (STATIC / "js").glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text(encoding="utf-8")):
            assert (STATIC / "js" / imported).is_file(), f"{module.name} imports {imported}"


def test_page_settings_list_every_persona_with_its_variables() -> None:
    settings = web.page_settings()

    names = [p["name"] for p in settings["personas"]]
    assert names == sorted(load_personas())
    travel = next(p for p in settings["personas"] if p["name"] == "travel_planner")
    assert "language" in travel["variables"]
    assert json.loads(json.dumps(settings)) == settings  # JSON-ready


def test_page_settings_describe_fields_from_the_context_metadata() -> None:
    fields = {f["name"]: f for f in web.setting_fields()}

    assert set(fields) == set(web.PAGE_SETTINGS)
    context_fields = {f.name: f for f in Context.__dataclass_fields__.values()}
    for name, described in fields.items():
        assert described["description"] == context_fields[name].metadata["description"]


def test_page_settings_expose_the_operators_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SERVER_MAX_REPLY_TOKENS", "300")
    monkeypatch.setenv("AGENT_MAX_TURNS", "8")

    limits = web.page_settings()["limits"]

    assert limits["temperature"] == {"min": 0.0, "max": 2.0}
    assert limits["max_reply_tokens"] == {"min": 1, "max": 300}
    assert limits["max_turns"] == {"min": 1, "max": 8}
    assert limits["message_bytes"]["max"] > 0


def test_page_graph_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_WEB_GRAPH", raising=False)
    assert web.page_graph() == "chatbot"
    monkeypatch.setenv("AGENT_WEB_GRAPH", " fake ")
    assert web.page_graph() == "fake"


# --- the run-queue wake-up ---------------------------------------------------------------------


def test_upstream_queue_still_has_the_shape_the_wakeup_relies_on() -> None:
    """Fails loudly when langgraph_runtime_inmem changes: re-read it, then fix or drop the patch."""
    runtime = queue_wakeup.inmem_runtime()
    assert runtime is not None, "langgraph_runtime_inmem is not installed"
    ops, queue = runtime

    queue_wakeup.check_upstream(ops, queue)


def test_check_upstream_names_what_changed() -> None:
    class Runs:
        @staticmethod
        async def next(wait: bool, limit: int = 1) -> AsyncIterator[Any]:
            yield None

        @staticmethod
        async def put() -> None:
            return None

    class Ops:
        pass

    Ops.Runs = Runs  # type: ignore[attr-defined]

    class Queue:
        @staticmethod
        async def queue() -> None:
            return None

    with pytest.raises(queue_wakeup.UpstreamChangedError, match="sleeps 0.5 s"):
        queue_wakeup.check_upstream(Ops, Queue)


class StubRuns:
    """The upstream contract in miniature: `next` takes only runs created before it looked."""

    created: list[tuple[str, datetime]] = []

    @staticmethod
    async def put(run: str) -> str:
        StubRuns.created.append((run, datetime.now(UTC)))
        return run

    @staticmethod
    async def next(wait: bool, limit: int = 1) -> AsyncIterator[str]:
        now = datetime.now(UTC)
        if wait:
            await asyncio.sleep(3600)  # never wakes by itself within a test
        for run, created in list(StubRuns.created):
            if created < now:
                StubRuns.created.remove((run, created))
                yield run


async def test_a_created_run_wakes_the_idle_queue_from_another_thread_and_loop() -> None:
    wakeup = queue_wakeup.QueueWakeup(StubRuns, poll_seconds=3600)
    wakeup.install()
    try:
        taken: list[str] = []

        async def queue_loop() -> None:
            while not taken:
                async for run in StubRuns.next(wait=True):
                    taken.append(run)

        for run in ("created-while-waiting", "created-before-the-next-wait"):
            taken.clear()
            waiting = asyncio.create_task(queue_loop())
            if run == "created-while-waiting":
                await asyncio.sleep(0)  # the queue task starts and waits for a signal
            # The API creates runs on another thread's event loop (as langgraph dev does).
            creator = threading.Thread(target=lambda run=run: asyncio.run(StubRuns.put(run)))
            creator.start()
            creator.join()
            await asyncio.wait_for(waiting, timeout=60)  # a hang guard: the poll is 3600 s
            assert taken == [run]
    finally:
        wakeup.uninstall()

    assert StubRuns.next is wakeup.original_next and StubRuns.put is wakeup.original_put


def test_installed_patches_the_inmem_runtime_and_restores_it() -> None:
    runtime = queue_wakeup.inmem_runtime()
    assert runtime is not None
    runs = runtime[0].Runs
    before = (runs.next, runs.put)

    with queue_wakeup.installed() as wakeup:
        assert wakeup is not None
        assert runs.next == wakeup.next and runs.put == wakeup.put

    assert (runs.next, runs.put) == before


# --- the endpoints' own logic ------------------------------------------------------------------


def sse(*events: tuple[str, Any]) -> str:
    """A server-sent-events body."""
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def test_streamed_reply_is_the_call_model_text_only() -> None:
    body = sse(
        ("metadata", {"run_id": "r"}),
        ("messages", [{"content": "Hel"}, {"langgraph_node": "call_model"}]),
        ("messages", [{"content": "IGNORED"}, {"langgraph_node": "tools"}]),
        (
            "messages",
            [{"content": [{"type": "text", "text": "lo"}]}, {"langgraph_node": "call_model"}],
        ),
        ("values", {"messages": []}),
    )

    assert web.streamed_reply(body + "event: messages\ndata: not json\n\n") == "Hello"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"shown": 5}, 5),
        ({"shown": 0}, 0),
        ({"shown": -1}, None),
        ({"shown": True}, None),
        ({}, None),
        ([], None),
    ],
)
def test_shown_length_takes_a_count_or_nothing(body: Any, expected: int | None) -> None:
    assert web.shown_length(body) == expected


def test_the_page_is_served_with_a_strict_content_security_policy() -> None:
    from starlette.testclient import TestClient

    with TestClient(web.app) as client:
        page = client.get("/chat")
        script = client.get("/chat/static/js/app.js")

    assert page.status_code == 200 and "<textarea" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_endpoints_refuse_ids_that_are_not_uuids() -> None:
    from starlette.testclient import TestClient

    with TestClient(web.app) as client:
        export = client.get("/chat/api/threads/not-a-thread/export")
        keep = client.post(f"/chat/api/threads/{uuid4()}/runs/..%2E/keep", json={})

    assert export.status_code == 422 and "thread_id" in export.json()["detail"]
    assert keep.status_code in (404, 422)
