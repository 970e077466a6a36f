"""The web app starts on both server runtimes: `langgraph dev` (in-memory) and the replicas (pg)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.server import custom_app, queue_wakeup, web
from agent.server.custom_app import CustomApp, UpstreamChangedError, check_upstream


def test_upstream_langgraph_api_still_serves_custom_apps_as_custom_app_expects() -> None:
    """Fails loudly when langgraph-api changes: re-read server.py, then fix or drop CustomApp."""
    check_upstream()


def test_check_upstream_names_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(custom_app, "_module_code", lambda name: "")

    with pytest.raises(UpstreamChangedError) as raised:
        check_upstream()

    message = str(raised.value)
    assert "the custom app is the server's app" in message
    assert "lifespan is merged" in message and "EnsureStoreAccessible" in message


def test_check_upstream_says_when_upstream_fixed_the_store_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = custom_app._module_code

    def fixed(name: str) -> str:
        code = real(name)
        if name == custom_app.ENSURE_STORE:
            code = code.replace("asyncdef__call__(", 'asyncdef__call__(if scope["type"]:', 1)
        return code

    monkeypatch.setattr(custom_app, "_module_code", fixed)

    with pytest.raises(UpstreamChangedError, match="for every scope, lifespan included"):
        check_upstream()


class StoreOnEveryScope:
    """Behaves like langgraph-api's EnsureStoreAccessible: looks the store up on every scope."""

    def __init__(self, app: ASGIApp, runtime: dict[str, Any]) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "store" not in self.runtime:  # as langgraph-runtime-pg before its lifespan ran
            raise RuntimeError("Store requires setup_store()/start_pool() first")
        scope.setdefault("state", {})["store"] = self.runtime["store"]
        await self.app(scope, receive, send)


def served_like_langgraph_api(kind: type[Starlette]) -> tuple[Starlette, dict[str, Any]]:
    """An app of `kind` wrapped as langgraph-api wraps a custom app, on a pg-like runtime."""
    runtime: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def runtime_lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime["store"] = "the store"  # the runtime's lifespan creates its store
        yield
        runtime["stopped"] = True

    async def page(request: Request) -> JSONResponse:
        return JSONResponse({"store": request.scope.get("state", {}).get("store")})

    app = kind(routes=[Route("/chat", page)], lifespan=runtime_lifespan)
    app.user_middleware = [Middleware(StoreOnEveryScope, runtime=runtime)]
    return app, runtime


def test_a_plain_starlette_app_cannot_start_on_a_runtime_whose_store_comes_from_the_lifespan() -> (
    None
):
    """The replicas' failure: the lifespan never starts (uvicorn then serves without it)."""
    app, runtime = served_like_langgraph_api(Starlette)

    with pytest.raises(RuntimeError, match="setup_store"), TestClient(app):
        pass
    assert "store" not in runtime


def test_custom_app_starts_without_the_middleware_and_serves_requests_through_it() -> None:
    app, runtime = served_like_langgraph_api(CustomApp)

    with TestClient(app) as client:
        response = client.get("/chat")

    assert response.json() == {"store": "the store"}  # the middleware still ran for HTTP
    assert runtime == {"store": "the store", "stopped": True}  # startup and shutdown both ran


def test_the_page_and_the_keep_endpoint_replay_runs_from_the_same_cursor() -> None:
    """One cursor both runtimes replay from the start (see web.REPLAY_FROM_START)."""
    api = (web.STATIC / "js" / "api.js").read_text(encoding="utf-8")

    assert re.findall(r'lastEventId: "([^"]*)"', api) == [web.REPLAY_FROM_START]


def test_the_web_app_is_a_custom_app() -> None:
    assert isinstance(web.app, CustomApp)


def test_the_queue_wakeup_stays_off_on_the_replicas_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = queue_wakeup.inmem_runtime()
    assert runtime is not None  # installed here, as in the replicas' virtualenv
    runs = runtime[0].Runs
    before = (runs.next, runs.put)
    monkeypatch.setenv("LANGGRAPH_RUNTIME_EDITION", "pg")  # what `langhost serve` sets

    with queue_wakeup.installed() as wakeup:
        assert wakeup is None
        assert (runs.next, runs.put) == before
