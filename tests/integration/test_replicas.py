"""Several server replicas sharing one PostgreSQL and one Redis (stock langgraph-api on the
langgraph-runtime-pg runtime, `langhost serve`), each a real process on its own port, with the
deployment's own config (deploy/replicas/langgraph.json, web page included).

Replica A executes runs; replica B only serves the API (no workers), so the tests know where a
run executes. After A is killed, replica C (with workers) takes over.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent.personas import load_personas
from agent.server.dev import ServerProcess, free_port, start_server
from agent.server.web import PAGE_SETTINGS, REPLAY_FROM_START, SECURITY_HEADERS
from tests.integration.server_harness import FAKE_GRAPH, REPO, server_config, server_env
from tests.integration.server_harness import user_message as message
from tests.integration.server_models import paused_model
from tests.integration.test_memory_support import postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

VENV = REPO / ".venv-replicas"
DEPLOY_CONFIG = REPO / "deploy" / "replicas" / "langgraph.json"
PID = re.compile(r"\(pid (\d+)\)")
PAUSED_TOKENS = paused_model.pause_after  # tokens the pausing graph streams before it waits


def redis_reachable(url: str) -> bool:
    """Whether something accepts connections at the Redis URL's host and port."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def flush_redis(url: str) -> None:
    """Empty the Redis database the caller named for these tests (AGENT_TEST_REDIS_URL)."""
    code = "import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()"
    subprocess.run([str(VENV / "bin" / "python"), "-c", code, url], check=True, timeout=30)


def redis_answers(port: int) -> bool:
    """Whether a Redis server on 127.0.0.1:port answers PING (False while it is starting)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """A throwaway `redis-server` of our own on a free port, no persistence; stopped after.

    Nobody else's Redis (or its data) is touched, and parallel test runs do not share one.
    """
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory)]
    with (directory / "redis.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120  # a bound on a hung start, not a speed expectation
        while not redis_answers(port):
            log = (directory / "redis.log").read_text()
            assert process.poll() is None, f"redis-server exited:\n{log}"
            assert time.monotonic() < deadline, f"redis-server not answering:\n{log}"
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)  # returns at once if it exits
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=60)


@contextmanager
def redis_for_tests(directory: Path) -> Iterator[str]:
    """AGENT_TEST_REDIS_URL if set (its database is flushed before and after), else our own."""
    url = os.environ.get("AGENT_TEST_REDIS_URL")
    if url is None:
        if shutil.which("redis-server") is None:
            pytest.skip("no redis-server (apt-get install redis-server) or AGENT_TEST_REDIS_URL")
        with private_redis(directory) as own:
            yield own
        return
    if not redis_reachable(url):
        pytest.skip(f"no Redis at AGENT_TEST_REDIS_URL={url}")
    flush_redis(url)
    try:
        yield url
    finally:
        flush_redis(url)


@pytest.fixture(scope="module")
def replicas_venv() -> Path:
    """Build (or reuse) .venv-replicas through the same make target users run."""
    done = subprocess.run(
        ["make", "--no-print-directory", "replicas-venv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return VENV


@dataclass
class Cluster:
    """What the replicas share, and how to start one more."""

    directory: Path
    env: dict[str, str]
    config: Path

    def start(self, name: str, jobs: int) -> ServerProcess:
        """Start a replica (`langhost serve`) on a free port and wait for /ok."""
        port = free_port()
        command = [str(VENV / "bin" / "langhost"), "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--config", str(self.config)]
        command += ["--n-jobs-per-worker", str(jobs), "--server-log-level", "warning"]
        return start_server(
            command,
            url=f"http://127.0.0.1:{port}",
            log=self.directory / f"replica-{name}.log",
            env=self.env,
            cwd=self.directory,
        )


@pytest.fixture(scope="module")
def cluster(replicas_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A throwaway database migrated once, and a throwaway Redis."""
    directory = tmp_path_factory.mktemp("replicas")
    graphs = {"fake": f"{FAKE_GRAPH}:graph", "pausing": f"{FAKE_GRAPH}:pausing"}
    graphs["model_probe"] = f"{FAKE_GRAPH}:model_probe"
    config = server_config(directory, graphs, source=DEPLOY_CONFIG)
    with redis_for_tests(directory) as redis_url, postgres_database() as database_uri:
        env = server_env(directory, {"FAKE_CHUNK_DELAY": "0.05", "AGENT_WEB_GRAPH": "fake"})
        env.update(DATABASE_URI=database_uri, REDIS_URI=redis_url)
        env.update(LG_RUNTIME_PG_AUTO_MIGRATE="false", PG_POOL_SIZE="5", PG_MAX_OVERFLOW="5")
        subprocess.run(
            [str(VENV / "bin" / "langgraph-runtime-pg-migrate"), "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield Cluster(directory, env, config)


@pytest.fixture(scope="module")
def replica_a(cluster: Cluster) -> Iterator[ServerProcess]:
    """The replica that executes runs (until it is killed)."""
    server = cluster.start("a", jobs=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replica_b(cluster: Cluster, replica_a: ServerProcess) -> Iterator[ServerProcess]:
    """An API-only replica: it serves threads and streams but executes nothing itself."""
    server = cluster.start("b", jobs=0)
    yield server
    server.stop()


@pytest.fixture
async def client_a(replica_a: ServerProcess) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=replica_a.url) as client:
        yield client


@pytest.fixture
async def client_b(replica_b: ServerProcess) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=replica_b.url) as client:
        yield client


def pid_in(text: str) -> int:
    """The pid of the server process that wrote a reply (the fake model says it)."""
    match = PID.search(text)
    assert match, text
    return int(match.group(1))


def executed_by(reply: dict[str, object]) -> int:
    """The pid of the server process that ran the turn."""
    messages = reply["messages"]
    assert isinstance(messages, list)
    return pid_in(str(messages[-1]["content"]))


def server_pid(replica: ServerProcess) -> int:
    """The pid of the replica's server process (langhost runs uvicorn in-process)."""
    return replica.process.pid


async def test_a_run_executing_on_a_streams_through_b(
    replica_a: ServerProcess, client_a: LangGraphClient, client_b: LangGraphClient
) -> None:
    thread_id = (await client_b.threads.create())["thread_id"]
    run = await client_b.runs.create(
        thread_id,
        "fake",
        input=message("stream me across replicas"),
        stream_mode=["messages-tuple", "values"],
        stream_resumable=True,
    )

    tokens: list[str] = []
    status_at_first_token = None
    # No stream_mode filter on the join: langgraph-api 0.11.1 drops token events when a join
    # asks for "messages-tuple"; unfiltered, it replays the modes the run was created with.
    async for part in client_b.runs.join_stream(thread_id, run["run_id"]):
        if part.event == "messages" and part.data[0]["content"]:
            assert part.data[1]["langgraph_node"] == "call_model"
            if not tokens:
                status_at_first_token = (await client_a.runs.get(thread_id, run["run_id"]))[
                    "status"
                ]
            tokens.append(part.data[0]["content"])

    final = await client_b.threads.get_state(thread_id)
    reply = final["values"]["messages"][-1]["content"]
    assert status_at_first_token == "running"  # tokens arrived while A was still running it
    assert len(tokens) >= 3 and "".join(tokens) == reply
    assert "heard: stream me across replicas" in reply
    assert executed_by(final["values"]) == server_pid(replica_a)


# --- the web page on the replicas (before the test that kills A) -------------------------------


def test_the_replicas_langgraph_api_serves_custom_apps_as_custom_app_expects(
    replicas_venv: Path,
) -> None:
    """agent.server.custom_app's upstream check, against the replicas' own langgraph-api."""
    code = "from agent.server.custom_app import check_upstream; check_upstream()"
    done = subprocess.run(
        [str(replicas_venv / "bin" / "python"), "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_deployment_serves_the_page_as_make_serve_does() -> None:
    deployed = DEPLOY_CONFIG.read_text(encoding="utf-8")
    development = (REPO / "langgraph.json").read_text(encoding="utf-8")

    assert '"app": "agent.server.web:app"' in deployed
    assert '"app": "agent.server.web:app"' in development


@pytest.mark.parametrize("name", ["a", "b"])
def test_every_replica_serves_the_chat_page_and_its_settings(
    name: str, replica_a: ServerProcess, replica_b: ServerProcess
) -> None:
    replica = {"a": replica_a, "b": replica_b}[name]
    with httpx.Client(base_url=replica.url, timeout=60) as http:
        page = http.get("/chat")
        scripts = re.findall(r'src="(/chat/static/[^"]+)"', page.text)
        script = http.get(scripts[0]) if scripts else None
        settings = http.get("/chat/api/settings")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for header, value in SECURITY_HEADERS.items():
        assert page.headers[header] == value
    assert (
        script is not None
        and script.status_code == 200
        and "javascript" in script.headers["content-type"]
    )
    assert settings.status_code == 200, settings.text
    described = settings.json()
    assert described["graph"] == "fake"  # AGENT_WEB_GRAPH, read by this replica
    assert [p["name"] for p in described["personas"]] == sorted(load_personas())
    assert [s["name"] for s in described["settings"]] == list(PAGE_SETTINGS)


def page_run(text: str, **extra: Any) -> dict[str, Any]:
    """The run options the page sends with each message (static/js/app.js, startRun)."""
    return {
        "input": message(text),
        "stream_mode": ["messages-tuple"],
        "stream_resumable": True,
        "on_disconnect": "continue",
        "multitask_strategy": "reject",
        **extra,
    }


async def stream_text(client: LangGraphClient, thread_id: str, graph: str, text: str) -> str:
    """One turn as the page streams it; returns the streamed reply text."""
    tokens = []
    async for part in client.runs.stream(thread_id, graph, **page_run(text)):
        if part.event == "messages" and part.data[1]["langgraph_node"] == "call_model":
            tokens.append(part.data[0]["content"])
    return "".join(tokens)


async def test_the_pages_turns_run_on_a_stream_through_b_and_export_from_the_shared_store(
    replica_a: ServerProcess, replica_b: ServerProcess, client_b: LangGraphClient
) -> None:
    thread_id = (await client_b.threads.create(metadata={"title": "across replicas"}))["thread_id"]
    first = await stream_text(client_b, thread_id, "fake", "the first message")
    tokens: list[str] = []
    narrow = page_run("the second message", context={"max_turns": 1})  # evicts the first
    async for part in client_b.runs.stream(thread_id, "fake", **narrow):
        if part.event == "messages" and part.data[1]["langgraph_node"] == "call_model":
            tokens.append(part.data[0]["content"])
    with httpx.Client(base_url=replica_b.url, timeout=60) as http:
        exported = http.get(f"/chat/api/threads/{thread_id}/export", params={"format": "json"})

    assert len(tokens) >= 3  # streamed in several steps
    second = "".join(tokens)
    assert "heard: the second message (" in second  # the first was outside the window
    assert pid_in(second) == server_pid(replica_a)
    assert exported.status_code == 200, exported.text
    body = exported.json()
    texts = [m["content"] for m in body["messages"]]
    assert texts == ["the first message", first, "the second message", second]
    window = (await client_b.threads.get_state(thread_id))["values"]["messages"]
    assert [m["content"] for m in window] == ["the second message", second]


async def call_model_text(parts: AsyncIterator[Any], tokens: int) -> tuple[str | None, str]:
    """The run id and the first `tokens` reply tokens of a run's stream (then stop reading)."""
    run_id, text, seen = None, "", 0
    async for part in parts:
        if part.event == "metadata":
            run_id = part.data["run_id"]
        elif part.event == "messages" and part.data[1]["langgraph_node"] == "call_model":
            text, seen = text + part.data[0]["content"], seen + 1
            if seen == tokens:
                break
    return run_id, text


async def paused_model_counters(client: LangGraphClient) -> dict[str, int]:
    """The pausing graph's model counters, read inside the replica that executes runs (A)."""
    result = await client.runs.wait(None, "model_probe", input=message("report"))
    return dict(json.loads(result["messages"][-1]["content"]))  # type: ignore[index,call-overload]


async def test_stop_through_b_cancels_the_model_call_on_a_and_keeps_the_partial_reply(
    replica_b: ServerProcess, client_b: LangGraphClient
) -> None:
    thread_id = (await client_b.threads.create())["thread_id"]
    started = client_b.runs.stream(thread_id, "pausing", **page_run("go on and on"))
    # The model streams PAUSED_TOKENS tokens, then waits for a resume that never comes.
    run_id, partial = await call_model_text(started, PAUSED_TOKENS)
    assert run_id is not None
    rejoin = client_b.runs.join_stream(thread_id, run_id, last_event_id=REPLAY_FROM_START)
    _, rejoined = await call_model_text(rejoin, PAUSED_TOKENS)  # a second tab, a reload
    await client_b.runs.cancel(thread_id, run_id, wait=True, action="interrupt")
    with httpx.Client(base_url=replica_b.url, timeout=60) as http:
        kept = http.post(
            f"/chat/api/threads/{thread_id}/runs/{run_id}/keep", json={"shown": len(partial)}
        )
    run = await client_b.runs.get(thread_id, run_id)
    state = (await client_b.threads.get_state(thread_id))["values"]["messages"]
    counters = await paused_model_counters(client_b)
    for _ in range(300):  # the cancellation reaches the model call asynchronously
        if counters["cancelled"]:
            break
        await asyncio.sleep(0.2)
        counters = await paused_model_counters(client_b)
    after = await stream_text(client_b, thread_id, "fake", "and now?")

    assert partial and rejoined == partial  # replayed from the first token, though A runs it
    assert kept.status_code == 200, kept.text
    assert kept.json() == {"saved": True, "content": partial}
    assert run["status"] == "interrupted"
    assert [m["type"] for m in state] == ["human", "ai"]
    assert state[-1]["content"] == partial
    assert state[-1]["response_metadata"]["interrupted"] is True
    assert counters["cancelled"] == 1  # the model call on A ended, not only the run
    assert "heard: go on and on | and now?" in after


async def test_a_thread_started_on_a_continues_on_b_and_survives_killing_a(
    cluster: Cluster,
    replica_a: ServerProcess,
    client_a: LangGraphClient,
    client_b: LangGraphClient,
) -> None:
    thread_id = (await client_a.threads.create())["thread_id"]
    first = await client_a.runs.wait(thread_id, "fake", input=message("I am Ada"))
    second = await client_b.runs.wait(thread_id, "fake", input=message("who am I?"))

    assert "heard: I am Ada | who am I?" in second["messages"][-1]["content"]
    assert executed_by(first) == executed_by(second) == server_pid(replica_a)

    replica_a.kill()  # between turns, no shutdown hooks
    replica_c = cluster.start("c", jobs=2)
    try:
        third = await client_b.runs.wait(thread_id, "fake", input=message("still there?"))
    finally:
        replica_c.stop()

    assert "heard: I am Ada | who am I? | still there?" in third["messages"][-1]["content"]
    assert executed_by(third) == server_pid(replica_c)
    state = await client_b.threads.get_state(thread_id)
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"] * 3
