"""Several server replicas sharing one PostgreSQL and one Redis (stock langgraph-api on the
langgraph-runtime-pg runtime, `langhost serve`), each a real process on its own port.

Replica A executes runs; replica B only serves the API (no workers), so the tests know where a
run executes. After A is killed, replica C (with workers) takes over.
"""

from __future__ import annotations

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

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent.server.dev import ServerProcess, free_port, start_server
from tests.integration.server_harness import FAKE_GRAPH, REPO, server_config, server_env
from tests.integration.server_harness import user_message as message
from tests.integration.test_memory_support import postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

VENV = REPO / ".venv-replicas"
PID = re.compile(r"\(pid (\d+)\)")


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
    # deploy/replicas/langgraph.json has no custom http app (the web page): neither does this.
    config = server_config(directory, {"fake": f"{FAKE_GRAPH}:graph"}, web_app=False)
    settings = json.loads(config.read_text())
    # langgraph-runtime-pg 0.11.1 cannot store runs when custom auth is on (docs/server.md).
    settings.pop("auth", None)
    config.write_text(json.dumps(settings))
    with redis_for_tests(directory) as redis_url, postgres_database() as database_uri:
        env = server_env(directory, {"FAKE_CHUNK_DELAY": "0.05"})
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


def executed_by(reply: dict[str, object]) -> int:
    """The pid of the server process that ran the turn (the fake model says it)."""
    messages = reply["messages"]
    assert isinstance(messages, list)
    match = PID.search(str(messages[-1]["content"]))
    assert match, messages[-1]
    return int(match.group(1))


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
