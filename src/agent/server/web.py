"""The web chat page, served by the LangGraph server itself (`"http": {"app": ...}`).

The page (static files in `agent/web/static`, no build step) lives at `/chat` on the same origin
as the API and talks to the standard LangGraph API: threads, runs, streaming, cancel, join.
Two small read-only endpoints add what that API cannot tell:

- `GET /chat/api/settings`: the personas, the per-run settings the page offers (with their
  descriptions from `agent.Context`), and the graph to talk to.
- `GET /chat/api/threads/{thread_id}/export?format=markdown|json`: the whole transcript, the
  archived messages included (they live in the server's store, where clients cannot read).

Both answer only what the caller's token may see: they ask the server's own API, in process
and with the caller's credentials, so the project's auth decides (401 without a valid token,
404 for another user's thread).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import MISSING, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import BaseMessage, messages_from_dict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent.context import Context
from agent.errors import AgentError
from agent.memory.archive import StoreArchive
from agent.memory.threads import ThreadInfo, export_json, export_markdown, merge_transcript
from agent.personas import load_personas
from agent.server import queue_wakeup

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
DEFAULT_GRAPH = "chatbot"
# Settings the page lets a user change per run (the rest are the operator's business).
PAGE_SETTINGS = ("temperature", "max_turns", "max_reply_tokens")
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_graph(environ: Mapping[str, str] | None = None) -> str:
    """The graph (assistant id) the page talks to: AGENT_WEB_GRAPH, else `chatbot`."""
    env = os.environ if environ is None else environ
    return env.get("AGENT_WEB_GRAPH", "").strip() or DEFAULT_GRAPH


def persona_list() -> list[dict[str, Any]]:
    """Every persona the server knows: name, description and its variables with defaults."""
    personas = load_personas()
    return [
        {
            "name": persona.name,
            "description": persona.description,
            "variables": {
                name: persona.variables.get(name, "") for name in persona.required_variables
            },
        }
        for persona in sorted(personas.values(), key=lambda p: p.name)
    ]


def setting_fields() -> list[dict[str, Any]]:
    """The per-run settings the page offers: name, description and default from `Context`."""
    known = {f.name: f for f in fields(Context)}
    described = []
    for name in PAGE_SETTINGS:
        field = known[name]
        default = None if field.default is MISSING else field.default
        described.append(
            {"name": name, "description": field.metadata.get("description", ""), "default": default}
        )
    return described


def page_settings() -> dict[str, Any]:
    """What the page needs to build its settings form."""
    return {"graph": page_graph(), "personas": persona_list(), "settings": setting_fields()}


def credentials(request: Request) -> dict[str, str]:
    """The caller's credential headers, to forward unchanged to the server's own API."""
    return {name: value for name in CREDENTIAL_HEADERS if (value := request.headers.get(name))}


@contextlib.asynccontextmanager
async def own_api(request: Request) -> AsyncIterator[httpx.AsyncClient]:
    """A client for this server's API, in process, authenticated as the caller.

    Going through the real routes (not the auth-free loopback) means the server's auth decides
    what the caller may see, exactly as for the page's other requests.
    """
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://chat.internal", headers=credentials(request)
    ) as client:
        yield client


def relay(response: httpx.Response) -> Response:
    """Pass the API's refusal (401, 403, 404...) on to the page unchanged."""
    return Response(
        response.content,
        status_code=response.status_code,
        media_type=response.headers.get("content-type"),
        headers={k: v for k, v in response.headers.items() if k.lower() == "www-authenticate"},
    )


async def index(request: Request) -> Response:
    """The chat page itself (no credentials needed to load it; the API asks for them)."""
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def settings(request: Request) -> Response:
    """Personas and per-run settings, for callers the server's auth accepts."""
    async with own_api(request) as api:
        check = await api.post("/assistants/search", json={"limit": 1})
    if check.status_code != 200:
        return relay(check)
    try:
        return JSONResponse(page_settings(), headers={"Cache-Control": "no-store"})
    except AgentError as error:  # e.g. a broken persona file: say which
        return JSONResponse({"error": type(error).__name__, "message": str(error)}, 500)


def thread_info(thread: Mapping[str, Any], values: Mapping[str, Any]) -> ThreadInfo:
    """A ThreadInfo (as the CLI exports it) from the server's thread and its state."""
    metadata = thread.get("metadata") or {}
    messages = values.get("messages") or []
    first = next((m for m in messages if m.get("type") == "human"), None)
    title = metadata.get("title") or (str(first.get("content", ""))[:60] if first else "")
    return ThreadInfo(
        id=str(thread["thread_id"]),
        title=str(title),
        persona=str(values.get("persona", "")),
        messages=int(values.get("archived", 0)) + len(messages),
        created_at=datetime.fromisoformat(thread["created_at"]),
        updated_at=datetime.fromisoformat(thread["updated_at"]),
    )


def window_messages(values: Mapping[str, Any]) -> list[BaseMessage]:
    """The state's messages (as the API returns them) as LangChain messages."""
    return messages_from_dict(
        [{"type": m["type"], "data": m} for m in values.get("messages") or []]
    )


async def export(request: Request) -> Response:
    """The caller's thread as Markdown or JSON: archived messages, then the window."""
    thread_id = request.path_params["thread_id"]
    kind = request.query_params.get("format", "markdown")
    if kind not in ("markdown", "json"):
        return JSONResponse({"detail": "format must be 'markdown' or 'json'."}, 422)
    async with own_api(request) as api:
        thread = await api.get(f"/threads/{thread_id}")
        if thread.status_code != 200:
            return relay(thread)
        state = await api.get(f"/threads/{thread_id}/state")
    if state.status_code != 200:
        return relay(state)
    values = state.json().get("values") or {}
    archive = StoreArchive(await server_store())
    archived = await archive.aread(thread_id, int(values.get("archived", 0)))
    messages = merge_transcript(archived, window_messages(values))
    info = thread_info(thread.json(), values)
    if kind == "json":
        return Response(export_json(info, messages), media_type="application/json")
    return PlainTextResponse(export_markdown(info, messages), media_type="text/markdown")


async def server_store() -> Any:
    """The server's own store (the one the graph archives evicted messages into)."""
    from langgraph_api.store import get_store  # type: ignore[import-untyped]

    return await get_store()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Wake the in-memory run queue as runs are created (see agent.server.queue_wakeup)."""
    with queue_wakeup.installed():
        yield


app = Starlette(
    routes=[
        Route("/chat", index, methods=["GET"]),
        Route("/chat/", index, methods=["GET"]),
        Route("/chat/api/settings", settings, methods=["GET"]),
        Route("/chat/api/threads/{thread_id}/export", export, methods=["GET"]),
        Mount("/chat/static", StaticFiles(directory=STATIC), name="chat-static"),
    ],
    lifespan=lifespan,
)
