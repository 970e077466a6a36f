"""Test-only graphs for server tests: the real graph on a scripted fake model, and a store probe."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime

# The server loads this file by path; make `tests.fakes` importable whatever the server's sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.graph import builder  # noqa: E402
from agent.memory.archive import StoreArchive  # noqa: E402
from agent.memory.threads import THREADS  # noqa: E402
from tests.fakes import FakeChat, with_memory_jobs  # noqa: E402
from tests.integration.server_models import paused_model  # noqa: E402


def describe_input(messages: Sequence[BaseMessage]) -> str:
    """Reply with what the model was sent (and which process ran it): persona, memory, replica."""
    system = str(messages[0].text) if messages and messages[0].type == "system" else ""
    said = " | ".join(str(m.text) for m in messages if m.type == "human")
    return f"[{system[:40]}] heard: {said} (pid {os.getpid()})"


graph = builder(
    chat_model=FakeChat(
        reply=describe_input,
        chunk_size=8,
        delay=float(os.environ.get("FAKE_CHUNK_DELAY", "0")),
    )
).compile()


async def inspect_store(state: MessagesState, runtime: Runtime[None]) -> dict[str, Any]:
    """Report (and optionally plant) what the project stored for a thread, from inside the server.

    The request is the last user message, as JSON: {"thread_id": ..., "plant_record": bool}.
    Tests use it to see the store the graph uses, which clients cannot read through /store.
    """
    request = json.loads(str(state["messages"][-1].text))
    thread_id, store = request["thread_id"], runtime.store
    assert store is not None
    if request.get("plant_record"):
        await store.aput(THREADS, thread_id, {"title": "planted by the probe"})
    archived = await StoreArchive(store).aread(thread_id)
    record = await store.aget(THREADS, thread_id)
    found = {
        "archived": [str(m.text) for m in archived],
        "record": None if record is None else record.value,
    }
    return {"messages": [AIMessage(content=json.dumps(found))]}


probe = StateGraph(MessagesState)
probe.add_node(inspect_store)
probe.add_edge(START, "inspect_store")
store_probe = probe.compile(name="store_probe")


# `pausing` answers with a model that waits mid-reply until its call is cancelled;
# `model_probe` reports that model's counters.
pausing = builder(chat_model=paused_model).compile()


async def report_model(state: MessagesState) -> dict[str, Any]:
    """Answer with the paused model's counters, as JSON."""
    counters = {"produced": paused_model.produced, "cancelled": paused_model.cancelled}
    return {"messages": [AIMessage(content=json.dumps(counters))]}


model_report = StateGraph(MessagesState)
model_report.add_node(report_model)
model_report.add_edge(START, "report_model")
model_probe = model_report.compile(name="model_probe")


def show_system(messages: Sequence[BaseMessage]) -> str:
    """Reply with the whole system message, so tests see the summary and the recalled facts."""
    return str(messages[0].text) if messages and messages[0].type == "system" else "(none)"


# `memory`: the real graph whose fake model also summarizes and extracts facts (issue 14).
memory = builder(
    chat_model=FakeChat(reply=with_memory_jobs(show_system)), embeddings=None
).compile()
