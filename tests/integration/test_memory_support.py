"""Support for the memory tests (no tests here): PostgreSQL databases and real worker processes.

- `postgres_database()` makes a throwaway database on the server at 127.0.0.1:5432 and drops it
  afterwards; tests skip (saying why) only when no server is reachable.
- `unwritable(path)` makes a file or directory unwritable, for root too (chattr +i);
- Workers are real processes forked from a warm forkserver (langgraph already imported), so a
  trial costs milliseconds, not a 2-second interpreter start; they report progress by appending
  lines to a file, and are killed with SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

ADMIN_URLS = (
    os.environ.get("AGENT_TEST_POSTGRES_URL", ""),
    "postgresql://root@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/test",
)
REPLY_END = "z" * 24
PRELOAD = ["agent.chatbot", "agent.memory", "agent.memory.postgres", "tests.fakes"]


# --- PostgreSQL -------------------------------------------------------------------------------


@cache
def postgres_admin() -> tuple[str | None, str]:
    """The first admin URL that connects, or None and why none did."""
    import psycopg

    reasons = []
    for url in filter(None, ADMIN_URLS):
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url, ""
        except psycopg.OperationalError as error:
            reasons.append(f"{url}: {str(error).strip().splitlines()[0]}")
    return None, "; ".join(reasons)


def require_postgres() -> str:
    """The admin URL, or skip the test saying no PostgreSQL server is reachable."""
    url, why = postgres_admin()
    if url is None:
        pytest.skip(f"no PostgreSQL server reachable ({why})")
    return url


def database_url(admin_url: str, name: str) -> str:
    """The admin URL pointed at another database."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards (connections and all)."""
    import psycopg

    admin = require_postgres()
    name = f"agent_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_fixture() -> Any:
    """A `pg_url` fixture for a test module: a throwaway database per test."""

    @pytest.fixture
    def pg_url() -> Iterator[str]:
        with postgres_database() as url:
            yield url

    return pg_url


# --- files nobody may write -----------------------------------------------------------------


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make a file or directory unwritable for this process, even as root, then restore it.

    Without root, clearing the write bits is enough; root ignores them, so it gets the
    immutable attribute (a real read-only file, like one on a read-only mount).
    """
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make {path} unwritable as root: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextmanager
def failing_writes(memory: Any, table: str, column: str, prefix: str) -> Iterator[None]:
    """Make the database itself refuse writes to `table` where `column` starts with `prefix`.

    A trigger raising 'injected' (SQLite and PostgreSQL alike): a real failure of the real
    database, for as long as the block lasts.
    """
    condition = f"NEW.{column} LIKE '{prefix}%'"
    if memory.kind == "sqlite":
        import sqlite3

        with sqlite3.connect(memory.location.target) as conn:
            for event in ("INSERT", "UPDATE"):
                conn.execute(
                    f"CREATE TRIGGER refuse_{event} BEFORE {event} ON {table} WHEN {condition} "
                    "BEGIN SELECT RAISE(ABORT, 'injected'); END"
                )
        try:
            yield
        finally:
            with sqlite3.connect(memory.location.target) as conn:
                conn.executescript("DROP TRIGGER refuse_INSERT; DROP TRIGGER refuse_UPDATE;")
        return
    import psycopg

    with psycopg.connect(memory.location.target, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected'; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({condition}) EXECUTE FUNCTION refuse()"
        )
    try:
        yield
    finally:
        with psycopg.connect(memory.location.target, autocommit=True) as conn:
            conn.execute(f"DROP TRIGGER refuse ON {table}")
            conn.execute("DROP FUNCTION refuse()")


# --- replies a test can check -----------------------------------------------------------------


def numbered_reply(messages: Sequence[BaseMessage]) -> str:
    """A reply that names the message it answers and how many user messages the model saw."""
    seen = sum(isinstance(m, HumanMessage) for m in messages)
    return f"Reply to <{messages[-1].text}> after {seen} user messages, " + REPLY_END


def reply_is_for(reply: BaseMessage, question: BaseMessage) -> bool:
    """Whether a stored reply is the complete answer to this question (not a fragment)."""
    return (
        isinstance(reply, AIMessage)
        and str(reply.text).startswith(f"Reply to <{question.text}> after ")
        and str(reply.text).endswith(REPLY_END)
    )


# --- worker processes -------------------------------------------------------------------------


@cache
def forkserver() -> ForkServerContext:
    """A forkserver context whose server has the heavy imports done once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start(target: Callable[..., None], *args: Any) -> BaseProcess:
    """Start `target(*args)` in a new process forked from the warm server."""
    process = forkserver().Process(target=target, args=args, daemon=True)
    process.start()
    return process


def note(log: str, line: str) -> None:
    """Append one progress line (a single write, so a kill never leaves half a line)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def notes(log: str | Path) -> list[str]:
    """The progress lines written so far."""
    path = Path(log)
    return path.read_text().splitlines() if path.exists() else []


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `predicate()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.005)


def finish(process: BaseProcess, timeout: float = 60.0) -> int:
    """Join a worker (killing it if it hangs) and return its exit code."""
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
    return process.exitcode if process.exitcode is not None else -1


def open_bot(url: str, thread_id: str, *, delay: float = 0.0, **memory: Any) -> tuple[Any, Any]:
    """A Chatbot on the database at `url` with the numbered fake model, and that model."""
    from agent.chatbot import Chatbot
    from agent.memory import open_memory
    from tests.fakes import FakeChat

    model = FakeChat(reply=numbered_reply, delay=delay, chunk_size=6)
    bot = Chatbot(
        thread_id=thread_id, chat_model=model, memory=open_memory(url, **memory), max_turns=3
    )
    return bot, model


def wait_for_go(go: str) -> None:
    """Block until the parent creates the `go` file, so workers start together."""
    while not os.path.exists(go):
        time.sleep(0.001)


# Worker targets: module-level so the forkserver can import them by name.


def crash_worker(
    url: str, thread_id: str, log: str, turns: int, phase: str, delay_fraction: float
) -> None:
    """Take turns; during the last one, SIGKILL itself at a random point of `phase`.

    Phases: `before_model` (from the call to the first token: lock, thread record, trim,
    archive), `mid_stream` (between the first and the last token), `checkpoint_write` (after
    the last token: the graph's checkpoint write, the thread record, pruning). The delay is a
    random fraction of that phase's duration on the earlier turns, so kills land all over it.
    """
    import sys

    sys.setswitchinterval(0.0002)  # let the kill timer preempt the turn promptly
    bot, _ = open_bot(url, thread_id, delay=0.002)
    spans: dict[str, list[float]] = {"before_model": [], "mid_stream": [], "checkpoint_write": []}
    for number in range(turns):
        last = number == turns - 1
        note(log, f"begin {number}")
        started = time.perf_counter()
        if last and phase == "before_model":
            arm_kill(delay_fraction * mean(spans[phase]))
        first = final = started
        received = ""
        for piece in bot.stream(f"turn {number}"):
            final = time.perf_counter()
            if not received:
                first = final
                if last and phase == "mid_stream":
                    arm_kill(delay_fraction * mean(spans[phase]))
            received += piece
            if received.endswith(REPLY_END) and last and phase == "checkpoint_write":
                arm_kill(delay_fraction * mean(spans[phase]))
        ended = time.perf_counter()
        note(log, f"done {number}")
        spans["before_model"].append(first - started)
        spans["mid_stream"].append(final - first)
        spans["checkpoint_write"].append(ended - final)
    time.sleep(5)  # unreachable in practice: the kill timer fires during the last turn


def mean(values: Sequence[float]) -> float:
    """The average, or a small default before anything was measured."""
    return sum(values) / len(values) if values else 0.01


def arm_kill(after: float) -> None:
    """SIGKILL this process `after` seconds from now, from a timer thread."""
    timer = threading.Timer(max(after, 0.0), os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()


def turn_worker(
    url: str, thread_id: str, log: str, text: str, go: str, options: dict[str, Any]
) -> None:
    """Wait for `go`, take one turn, and note how it went (`done <reply>` or `busy`)."""
    from agent.memory import ThreadBusyError

    bot, _ = open_bot(url, thread_id, delay=options.get("delay", 0.0), **options.get("memory", {}))
    note(log, f"ready {text}")
    wait_for_go(go)
    try:
        reply = bot.say(text)
    except ThreadBusyError:
        note(log, f"busy {text}")
        return
    note(log, f"done {reply}")


def migrate_worker(url: str, log: str, go: str) -> None:
    """Wait for `go`, then run the migration (the CLI's `agent db migrate`) and note success."""
    from agent.memory import migrate

    note(log, "ready")
    wait_for_go(go)
    migrate(url)
    note(log, "migrated")


def random_phases(trials: int, seed: int) -> list[tuple[str, int, float]]:
    """(phase, turns, delay fraction) per trial: every phase equally often, the rest random."""
    rng = random.Random(seed)
    phases = ["before_model", "mid_stream", "checkpoint_write"]
    return [(phases[n % 3], rng.randint(2, 5), rng.uniform(0.0, 1.0)) for n in range(trials)]
