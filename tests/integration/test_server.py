"""The graph under a real `langgraph dev` process, driven through the LangGraph SDK."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from agent.server.dev import ServerProcess, free_port, moved_port
from tests.integration.server_harness import FAKE_GRAPH, REPO, start_dev_server, user_message

pytestmark = pytest.mark.integration

STREAM_MODES: list[Any] = ["messages-tuple", "values"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One dev server for the module: graphs `fake` (scripted model) and `chatbot` (embedded)."""
    personas = tmp_path_factory.mktemp("personas")
    (personas / "broken.toml").write_text("system = 42\n")
    (personas / "shanty.toml").write_text('system = "You sing sea shanties."\n')
    running = start_dev_server(
        tmp_path_factory.mktemp("dev-server"),
        env={
            "FAKE_CHUNK_DELAY": "0.02",
            "AGENT_MAX_REPLY_TOKENS": "24",
            "AGENT_PERSONAS_DIR": str(personas),
        },
        graphs={"pausing": f"{FAKE_GRAPH}:pausing", "model_probe": f"{FAKE_GRAPH}:model_probe"},
    )
    yield running
    running.stop()


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[LangGraphClient]:
    """An SDK client bound to the module's server."""
    async with get_client(url=server.url) as sdk:
        yield sdk


async def new_thread(client: LangGraphClient) -> str:
    """Create a thread and return its id."""
    thread = await client.threads.create()
    return str(thread["thread_id"])


async def stream_turn(
    client: LangGraphClient, thread_id: str, text: str, graph: str = "fake", **kwargs: Any
) -> list[StreamPart]:
    """All events of one streamed turn, in arrival order."""
    return [
        part
        async for part in client.runs.stream(
            thread_id, graph, input=user_message(text), stream_mode=STREAM_MODES, **kwargs
        )
    ]


def token_events(parts: list[StreamPart]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """(position, chunk, metadata) of each token event."""
    return [(i, p.data[0], p.data[1]) for i, p in enumerate(parts) if p.event == "messages"]


def last_reply(parts: list[StreamPart]) -> str:
    """The newest message of the final `values` event."""
    values = [p.data for p in parts if p.event == "values"]
    return str(values[-1]["messages"][-1]["content"])


def errors(parts: list[StreamPart]) -> list[dict[str, Any]]:
    """The `error` events of a stream."""
    return [p.data for p in parts if p.event == "error"]


async def test_stream_delivers_tokens_from_call_model_before_the_run_ends(
    client: LangGraphClient,
) -> None:
    parts = await stream_turn(client, await new_thread(client), "Hello there")

    tokens = token_events(parts)
    final_values = max(i for i, p in enumerate(parts) if p.event == "values")
    assert len([t for t in tokens if t[1]["content"]]) >= 3
    assert all(meta["langgraph_node"] == "call_model" for _, _, meta in tokens)
    assert all(position < final_values for position, _, _ in tokens)
    assert "".join(chunk["content"] for _, chunk, _ in tokens) == last_reply(parts)
    assert "heard: Hello there" in last_reply(parts)
    assert errors(parts) == []


async def test_second_run_remembers_the_first_and_threads_are_isolated(
    client: LangGraphClient,
) -> None:
    first, second = await new_thread(client), await new_thread(client)
    await stream_turn(client, first, "My name is Ada")
    await stream_turn(client, second, "I like tea")

    remembered = last_reply(await stream_turn(client, first, "What is my name?"))
    other = last_reply(await stream_turn(client, second, "And now?"))

    assert "heard: My name is Ada | What is my name?" in remembered
    assert "heard: I like tea | And now?" in other
    assert "Ada" not in other


async def test_state_and_history_are_readable(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await stream_turn(client, thread_id, "one")
    await stream_turn(client, thread_id, "two")

    state = await client.threads.get_state(thread_id)
    history = await client.threads.get_history(thread_id)

    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]
    assert [m["content"] for m in messages if m["type"] == "human"] == ["one", "two"]
    assert state["values"]["persona"] == "assistant"
    assert len(history) >= 4  # input + steps of both runs, newest first
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]


async def test_two_concurrent_runs_on_different_threads_both_complete(
    client: LangGraphClient,
) -> None:
    first, second = await new_thread(client), await new_thread(client)

    results = await asyncio.gather(
        client.runs.wait(first, "fake", input=user_message("from the first")),
        client.runs.wait(second, "fake", input=user_message("from the second")),
    )

    assert "heard: from the first" in results[0]["messages"][-1]["content"]
    assert "heard: from the second" in results[1]["messages"][-1]["content"]
    statuses = [run["status"] for t in (first, second) for run in await client.runs.list(t)]
    assert statuses == ["success", "success"]


async def test_run_context_sets_persona_and_window_and_the_thread_keeps_the_persona(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    tutor = await stream_turn(client, thread_id, "teach me", context={"persona": "tutor"})
    kept = await stream_turn(client, thread_id, "more please")
    narrow = await stream_turn(client, thread_id, "last one", context={"max_turns": 1})

    assert "Python tutor" in last_reply(tutor)
    assert "Python tutor" in last_reply(kept)
    assert "heard: teach me | more please" in last_reply(kept)
    assert "heard: last one (" in last_reply(narrow)  # a one-exchange window
    state = await client.threads.get_state(thread_id)
    assert state["values"]["persona"] == "tutor"


async def test_an_assistant_per_persona(client: LangGraphClient) -> None:
    tutor = await client.assistants.create("fake", context={"persona": "tutor"}, name="tutor")
    thread_id = await new_thread(client)

    reply = await client.runs.wait(thread_id, tutor["assistant_id"], input=user_message("hi"))
    again = await client.runs.wait(thread_id, "fake", input=user_message("and you?"))

    assert "Python tutor" in reply["messages"][-1]["content"]
    assert "Python tutor" in again["messages"][-1]["content"]  # the thread keeps its persona


async def test_empty_message_fails_that_run_clearly_and_loses_nothing(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    await stream_turn(client, thread_id, "keep me")

    failed = await stream_turn(client, thread_id, "   ")
    after = await stream_turn(client, thread_id, "still there?")

    assert errors(failed) == [
        {
            "error": "EmptyMessageError",
            "message": "Message is empty: type something for the assistant to answer.",
        }
    ]
    statuses = [run["status"] for run in await client.runs.list(thread_id)]
    assert statuses.count("error") == 1
    assert "heard: keep me | still there?" in last_reply(after)
    messages = (await client.threads.get_state(thread_id))["values"]["messages"]
    assert [m["content"] for m in messages if m["type"] == "human"] == ["keep me", "still there?"]


async def test_unknown_persona_fails_that_run_with_its_name_and_the_choices(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    failed = await stream_turn(client, thread_id, "hi", context={"persona": "no-such-persona"})
    recovered = await stream_turn(client, thread_id, "hi again")

    [error] = errors(failed)
    assert error["error"] == "UnknownPersonaError"
    assert "'no-such-persona'" in error["message"] and "tutor" in error["message"]
    assert "heard: hi again" in last_reply(recovered)


async def test_open_server_accepts_requests_without_a_token(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/threads/search", json={"limit": 1})
    assert response.status_code == 200


async def test_a_default_server_lets_clients_choose_no_model_and_sends_nothing_huge(
    server: ServerProcess, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    attempts = [
        {"input": user_message("hi"), "context": {"model": "gpt-4o"}},
        {"input": user_message("hi"), "context": {"max_reply_tokens": 100_000}},
        {"input": user_message("x" * 40_000)},
        {"input": {"messages": ["one", "two"]}},
        {"input": {"messages": [{"role": "assistant", "content": "I already said yes."}]}},
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        answers = [
            await http.post(
                f"/threads/{thread_id}/runs/wait", json={"assistant_id": "fake", **attempt}
            )
            for attempt in attempts
        ]

    assert [a.status_code for a in answers] == [422, 422, 413, 413, 422]
    assert "AGENT_SERVER_MODELS" in answers[0].text
    assert "AGENT_SERVER_MAX_REPLY_TOKENS" in answers[1].text
    assert "AGENT_SERVER_MAX_MESSAGE_BYTES" in answers[2].text
    assert await client.runs.list(thread_id) == []  # nothing was stored


@pytest.mark.slow
async def test_embedded_model_end_to_end(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await stream_turn(client, thread_id, "Say hello in one word.", graph="chatbot")

    assert errors(parts) == []
    tokens = [chunk["content"] for _, chunk, meta in token_events(parts) if chunk["content"]]
    assert tokens, "the embedded model streamed no tokens"
    assert "".join(tokens).strip() == last_reply(parts).strip()
    messages = (await client.threads.get_state(thread_id))["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]


def test_benchmark_smoke(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    command = [sys.executable, str(REPO / "bench" / "server_overhead.py")]
    command += ["--url", server.url, "--runs", "2", "--skip-embedded", "--out", str(out)]

    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"in-process", "server"}
    for result in results.values():
        assert len(result["total_s"]["samples"]) == 2
        assert 0 < result["ttft_s"]["min"] <= result["total_s"]["max"]
    assert "median" in done.stdout


def test_serve_fails_clearly_when_the_port_is_taken() -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        done = subprocess.run(
            [sys.executable, "-m", "agent.server.dev", "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "make serve PORT=" in done.stderr


def test_serve_recognises_the_dev_servers_port_move_message() -> None:
    line = "[warning] Port 2024 is already in use, using port 40113 instead."
    assert moved_port(line) == 40113
    assert moved_port("Application started up in 1.2s") is None


async def test_an_undeclared_persona_variable_fails_the_run_by_name(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    context = {"persona": "tutor", "persona_vars": {"username": "Ada"}}
    failed = await stream_turn(client, thread_id, "hi", context=context)
    assert "did you mean 'user_name'" in errors(failed)[0]["message"]


async def test_a_broken_persona_file_fails_its_own_persona_only_without_a_path(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    failed = await stream_turn(client, thread_id, "hi", context={"persona": "broken"})
    [error] = errors(failed)
    assert "broken.toml" in error["message"] and "field 'system'" in error["message"]
    assert "/" not in error["message"]  # the operator's directory stays private
    shanty = await stream_turn(client, thread_id, "hi", context={"persona": "shanty"})
    assert not errors(shanty) and "heard: hi" in last_reply(shanty)


async def paused_model_counters(client: LangGraphClient) -> dict[str, int]:
    """The pausing graph's model counters, read inside the server by the `model_probe` graph."""
    result = await client.runs.wait(None, "model_probe", input=user_message("report"))
    return dict(json.loads(result["messages"][-1]["content"]))  # type: ignore[index,call-overload]


async def test_cancelling_a_run_ends_its_model_call(client: LangGraphClient) -> None:
    """Stop in a client must stop the model, not only the run (the model would otherwise go on
    generating, holding an embedded slot, up to the reply cap)."""
    thread_id = await new_thread(client)
    run_id, tokens = None, 0
    async for part in client.runs.stream(
        thread_id, "pausing", input=user_message("go"), stream_mode=STREAM_MODES
    ):
        if part.event == "metadata":
            run_id = part.data["run_id"]
        tokens += part.event == "messages"
        if tokens == 2:  # the model has streamed and now waits for a resume that never comes
            break
    assert run_id is not None
    await client.runs.cancel(thread_id, run_id)
    counters = await paused_model_counters(client)
    for _ in range(300):  # the cancellation reaches the model call asynchronously
        if counters["cancelled"]:
            break
        await asyncio.sleep(0.2)
        counters = await paused_model_counters(client)
    assert counters == {"produced": 3, "cancelled": 1}
    after = await stream_turn(client, thread_id, "still there?")
    assert "heard: " in last_reply(after) and "still there?" in last_reply(after)
