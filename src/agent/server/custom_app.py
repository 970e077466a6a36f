"""A base for apps the LangGraph server serves (`"http": {"app": ...}`) that start on any runtime.

langgraph-api serves a custom app as the server itself: it merges the runtime's lifespan into the
app's router and wraps the app in its HTTP middleware, one of which (`EnsureStoreAccessible`)
fetches the runtime's store on *every* ASGI scope, the lifespan included. On the in-memory
runtime (`langgraph dev`) the store exists before the lifespan, so that goes unnoticed. On
langgraph-runtime-pg (the replicas) the lifespan creates the store, so the lookup raised before
the lifespan began; uvicorn (lifespan "auto") took that for "ASGI 'lifespan' protocol appears
unsupported", logged it at info level and served without ever starting the runtime: no database
pool, graphs or run queue, and every request, /ok included, failed with "Store requires
setup_store()/start_pool() first".

`CustomApp` hands the lifespan scope straight to its router, which runs the merged lifespan;
HTTP and websocket requests still pass through all the middleware. The other middleware
langgraph-api adds pass non-HTTP scopes through untouched, so for them nothing changes.

`check_upstream()` verifies langgraph-api still does what this relies on; a unit test calls it
(and the replicas test, against the replicas' own langgraph-api), so an upgrade that changes it
fails loudly: then re-read `langgraph_api/server.py` and update or drop this class.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

SERVER = "langgraph_api.server"
ENSURE_STORE = "langgraph_api.middleware.ensure_store"
SCOPE_TYPE_CHECKS = ('scope["type"]', "scope['type']", 'scope.get("type")', "scope.get('type')")


class UpstreamChangedError(RuntimeError):
    """Raised when langgraph-api no longer serves custom apps the way CustomApp expects."""


class CustomApp(Starlette):
    """A Starlette app whose startup and shutdown skip the HTTP middleware around it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request through the middleware; run the lifespan without it."""
        if scope["type"] == "lifespan":
            scope["app"] = self
            await self.router(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _module_code(name: str) -> str:
    """A module's source without whitespace, read without importing it ('' if not installed)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return ""
    return "".join(Path(spec.origin).read_text(encoding="utf-8").split())


def check_upstream() -> None:
    """Raise UpstreamChangedError unless langgraph-api serves custom apps as described above.

    Raises:
        UpstreamChangedError: Naming each expectation that no longer holds.
    """
    server, ensure_store = _module_code(SERVER), _module_code(ENSURE_STORE)
    expectations = [
        ("app=user_router" in server, "the custom app is the server's app"),
        (
            "app.router.lifespan_context=timing.combine_lifespans(lifespan," in server,
            "the runtime's lifespan is merged into the custom app's router",
        ),
        (
            "Middleware(EnsureStoreAccessible)" in server,
            "EnsureStoreAccessible wraps the custom app",
        ),
        (
            "_CONFIG=await_get_partial_conf()" in ensure_store
            and not any(check in ensure_store for check in SCOPE_TYPE_CHECKS),
            "EnsureStoreAccessible fetches the store for every scope, lifespan included",
        ),
    ]
    broken = [what for ok, what in expectations if not ok]
    if broken:
        raise UpstreamChangedError(
            f"langgraph-api changed; agent.server.custom_app relies on: {'; '.join(broken)}. "
            "Re-read langgraph_api/server.py and update or drop CustomApp."
        )
