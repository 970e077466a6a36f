"""The web chat page, served by the LangGraph server itself (`"http": {"app": ...}`).

The page (static files in `agent/web/static`, no build step) lives at `/chat` on the same origin
as the API and talks to the standard LangGraph API: threads, runs, streaming, cancel, join.
Two small read-only endpoints add what that API cannot tell:

- `GET /chat/api/settings`: the personas, the per-run settings the page offers (with their
  descriptions from `agent.Context`), and the graph to talk to.
- `GET /chat/api/threads/{thread_id}/export?format=markdown|json`: the whole transcript, the
  archived messages included (they live in the server's store, where clients cannot read).

- `POST /chat/api/threads/{thread_id}/runs/{run_id}/keep`: after the page cancelled a run
  (Stop), save what that run had streamed as the reply, marked interrupted (the project's rule,
  as `Chatbot.stop()`). The text comes from the run's own stored stream, cut at what the page
  showed, so a client cannot put words in the assistant's mouth; clients may not write thread
  state themselves (agent.server.auth).

They answer only what the caller's token may see: they ask the server's own API, in process
and with the caller's credentials, so the project's auth decides (401 without a valid token,
404 for another user's thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import uuid
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
from agent.memory.threads import (
    INTERRUPTED,
    ThreadInfo,
    export_json,
    export_markdown,
    merge_transcript,
)
from agent.personas import load_personas
from agent.server import queue_wakeup
from agent.server.custom_app import CustomApp
from agent.server.policy import TEMPERATURE_RANGE, ServerPolicy
from agent.server.runtime import server_store
from agent.settings import read

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
DEFAULT_GRAPH = "chatbot"
# Settings the page lets a user change per run (the rest are the operator's business).
PAGE_SETTINGS = ("temperature", "max_turns", "max_reply_tokens")
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
# Last-Event-ID that replays a run's stream from its first event on both runtimes: the in-memory
# one compares event ids as strings (every id sorts after "-"); langgraph-runtime-pg reads "-" as
# "from the beginning" but hands "-1" to Redis XRANGE, which refuses it, so nothing is replayed.
REPLAY_FROM_START = "-"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_graph() -> str:
    """The graph (assistant id) the page talks to: AGENT_WEB_GRAPH, else `chatbot`."""
    return str(read("AGENT_WEB_GRAPH") or DEFAULT_GRAPH)


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


def page_limits(policy: ServerPolicy) -> dict[str, Any]:
    """The operator's limits on what the page offers (read-only; the server enforces them)."""
    low, high = TEMPERATURE_RANGE
    return {
        "temperature": {"min": low, "max": high},
        "max_turns": {"min": 1, "max": policy.max_turns},
        "max_reply_tokens": {"min": 1, "max": policy.max_reply_tokens},
        "message_bytes": {"max": policy.max_message_bytes},
    }


def page_settings() -> dict[str, Any]:
    """What the page needs to build its settings form."""
    return {
        "graph": page_graph(),
        "personas": persona_list(),
        "settings": setting_fields(),
        "limits": page_limits(ServerPolicy.from_env()),
    }


def bad_ids(request: Request) -> Response | None:
    """A 422 unless every id in the path is a UUID (as the server's own ids are)."""
    for name in ("thread_id", "run_id"):
        value = request.path_params.get(name)
        if value is None:
            continue
        try:
            uuid.UUID(str(value))
        except ValueError:
            return JSONResponse({"detail": f"{name} must be a UUID."}, 422)
    return None


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
    if (refused := bad_ids(request)) is not None:
        return refused
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


def sse_events(text: str) -> list[tuple[str, Any]]:
    """(event, data) pairs of a server-sent-events body (data decoded from JSON)."""
    events = []
    for record in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in record.split("\n"):
            field, _, value = line.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        if data:
            try:
                events.append((name, json.loads("\n".join(data))))
            except json.JSONDecodeError:
                continue
    return events


def streamed_reply(stream: str) -> str:
    """The reply text a run streamed (`call_model`'s message chunks), from its SSE body."""
    pieces = []
    for event, data in sse_events(stream):
        if event != "messages" or not isinstance(data, list) or len(data) != 2:
            continue
        chunk, metadata = data
        if not isinstance(chunk, dict) or not isinstance(metadata, dict):
            continue
        if metadata.get("langgraph_node") == "call_model":
            pieces.append(content_text(chunk.get("content")))
    return "".join(pieces)


def content_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text")
        )
    return ""


def shown_length(body: Any) -> int | None:
    """How many characters of the reply the page showed (None: all of them)."""
    shown = body.get("shown") if isinstance(body, dict) else None
    return shown if isinstance(shown, int) and not isinstance(shown, bool) and shown >= 0 else None


async def keep_stopped_reply(request: Request) -> Response:
    """Save a cancelled run's streamed text as the turn's reply, marked interrupted."""
    if (refused := bad_ids(request)) is not None:
        return refused
    thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
    try:
        body = await request.json()
    except ValueError:
        body = {}
    async with own_api(request) as api:
        run = await api.get(f"/threads/{thread_id}/runs/{run_id}")
        if run.status_code != 200:
            return relay(run)
        status = run.json().get("status")
        if status in ("pending", "running"):
            return JSONResponse({"detail": "The run is still going: cancel it first."}, 409)
        if status != "interrupted":
            return JSONResponse({"saved": False, "reason": f"the run ended as {status}"})
        stream = await api.get(
            f"/threads/{thread_id}/runs/{run_id}/stream",
            headers={"Last-Event-ID": REPLAY_FROM_START},
        )
        state = await api.get(f"/threads/{thread_id}/state")
    if stream.status_code != 200 or state.status_code != 200:
        return relay(stream if stream.status_code != 200 else state)
    text = streamed_reply(stream.text)[: shown_length(body)]
    saved = state.json()
    messages = (saved.get("values") or {}).get("messages") or []
    last_run = (saved.get("metadata") or {}).get("run_id")
    if not text.strip() or not messages or messages[-1].get("type") != "human":
        return JSONResponse({"saved": False, "reason": "nothing to keep"})
    if last_run != run_id:
        return JSONResponse({"saved": False, "reason": "the thread moved on"})
    reply = {"type": "ai", "content": text, "response_metadata": {INTERRUPTED: True}}
    written = await as_server(request, f"/threads/{thread_id}/state", reply)
    if written.status_code != 200:
        return relay(written)
    return JSONResponse({"saved": True, "content": text})


async def as_server(request: Request, path: str, reply: dict[str, Any]) -> httpx.Response:
    """Write the reply as the graph's `call_model` would, with the server's own rights.

    The in-process loopback (root path /noauth) is how LangGraph lets server code call its own
    API; it runs in a fresh context so the caller's identity from earlier calls does not leak in.
    """

    async def write() -> httpx.Response:
        transport = httpx.ASGITransport(app=request.app, root_path="/noauth")
        async with httpx.AsyncClient(transport=transport, base_url="http://chat.internal") as api:
            return await api.post(
                path, json={"values": {"messages": [reply]}, "as_node": "call_model"}
            )

    return await asyncio.create_task(write(), context=contextvars.Context())


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Wake the in-memory run queue as runs are created (see agent.server.queue_wakeup).

    On other runtimes (the replicas' PostgreSQL + Redis) it does nothing and returns at once.
    """
    with queue_wakeup.installed():
        yield


# CustomApp: the server's startup must not go through the HTTP middleware (custom_app.py).
app = CustomApp(
    routes=[
        Route("/chat", index, methods=["GET"]),
        Route("/chat/", index, methods=["GET"]),
        Route("/chat/api/settings", settings, methods=["GET"]),
        Route("/chat/api/threads/{thread_id}/export", export, methods=["GET"]),
        Route(
            "/chat/api/threads/{thread_id}/runs/{run_id}/keep", keep_stopped_reply, methods=["POST"]
        ),
        Mount("/chat/static", StaticFiles(directory=STATIC), name="chat-static"),
    ],
    lifespan=lifespan,
)
