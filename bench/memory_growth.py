"""Memory growth: database size and per-turn overhead over a long conversation.

One thread, N turns of ~250-character messages answered by a fake model (no model time), for:
- naive: LangGraph with the full history in state, SqliteSaver, default durability (the anchor:
  659 MB and 5 ms -> 32 ms per turn at 1,000 turns on this machine);
- plain list: the tutorial's SlidingWindowChatbot (a Python list, the last max_turns exchanges
  sent each turn, nothing persisted) - the cost floor of "memory" with no database at all;
- agent-sqlite / agent-postgres: the Chatbot on `open_memory()` (window enforced in state,
  durability="exit", old checkpoints pruned, evicted messages in the transcript).
Per-turn overhead at turn T is the median wall time of turns T-9..T.

Usage: python -m bench.memory_growth [--marks 10 100 1000] [--no-postgres] [--output NAME]
Goals: under 20 MB at 1,000 turns; turn 1,000 costs no more than 1.5x turn 10.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from bench.common import Row, table, write_results

BENCH = "1-2 memory growth"
MESSAGE = "Tell me more about the history of the city, its food, its people and its music. "
POSTGRES_ADMIN = "postgresql://root@127.0.0.1:5432/test"
SIZE_GOAL_MB = 20.0
GROWTH_GOAL = 1.5


def user_message(number: int) -> str:
    """A distinct ~250-character user message."""
    return (f"Message {number}. " + MESSAGE * 4)[:250]


def reply_to(messages: Sequence[BaseMessage]) -> str:
    """A ~250-character reply, different each turn."""
    return (f"About {messages[-1].text[:20]}: " + MESSAGE * 4)[:250]


@dataclass
class Run:
    """One variant's measurements: turn durations, and the database size at each mark."""

    variant: str
    seconds: list[float] = field(default_factory=list)
    sizes_mb: dict[int, float] = field(default_factory=dict)

    def overhead(self, mark: int) -> list[float]:
        """The durations of the ten turns ending at `mark` (1-based)."""
        return self.seconds[max(0, mark - 10) : mark]


def drive(
    variant: str, turn: Callable[[int], object], size_mb: Callable[[], float], marks: Sequence[int]
) -> Run:
    """Take turns up to the last mark, timing each and sizing the database at each mark."""
    run = Run(variant)
    for number in range(1, max(marks) + 1):
        started = time.perf_counter()
        turn(number)
        run.seconds.append(time.perf_counter() - started)
        if number in marks:
            run.sizes_mb[number] = size_mb()
    return run


def fake_model() -> Any:
    from tests.fakes import FakeChat

    return FakeChat(reply=reply_to, chunk_size=16)


# --- the variants --------------------------------------------------------------------------------


def sqlite_size_mb(path: Path) -> float:
    """The database file plus its write-ahead log."""
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def run_naive(directory: Path, marks: Sequence[int]) -> Run:
    """Full history in state, SqliteSaver, default durability: what the seed did."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import START, MessagesState, StateGraph

    model = fake_model()

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    path = directory / "naive.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    builder = StateGraph(MessagesState)
    builder.add_node(call_model)
    builder.add_edge(START, "call_model")
    graph = builder.compile(checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "naive"}}

    def turn(number: int) -> None:
        graph.invoke({"messages": [HumanMessage(user_message(number))]}, config)  # type: ignore[arg-type]

    try:
        return drive("naive (full history, SqliteSaver)", turn, lambda: sqlite_size_mb(path), marks)
    finally:
        conn.close()


def run_plain_list(marks: Sequence[int], max_turns: int = 20) -> Run:
    """The tutorial's plain list with a per-turn sliding window: no graph, no database."""
    from langchain_core.messages import SystemMessage

    model = fake_model()
    system = SystemMessage("You are a helpful assistant.")
    history: list[BaseMessage] = []

    def turn(number: int) -> None:
        history.append(HumanMessage(user_message(number)))
        window = history[-(2 * max_turns - 1) :]
        history.append(model.invoke([system, *window]))

    return drive("plain list, per-turn slide (tutorial)", turn, lambda: 0.0, marks)


def run_agent(variant: str, url: str, size_mb: Callable[[], float], marks: Sequence[int]) -> Run:
    """The Chatbot on open_memory(url) with its defaults."""
    from agent.chatbot import Chatbot
    from agent.memory import open_memory

    with open_memory(url) as memory:
        bot = Chatbot(thread_id="bench", chat_model=fake_model(), memory=memory)
        run = drive(variant, lambda number: bot.say(user_message(number)), size_mb, marks)
        assert len(bot.transcript()) == 2 * max(marks), "the transcript lost messages"
        return run


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A throwaway database on the local server, or None if there is no server."""
    import psycopg

    name = f"agent_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        print(f"skipping PostgreSQL: {error}".strip(), file=sys.stderr)
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_size_mb(url: str) -> float:
    """The size of the memory's tables (with indexes and TOAST) in the database."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchone()
    return float(row[0]) / 1e6 if row else 0.0


# --- rows -----------------------------------------------------------------------------------------


def rows_for(run: Run, marks: Sequence[int], goals: bool) -> list[Row]:
    """Size and overhead at each mark, and the last mark's overhead over the first's."""
    rows = [
        Row(
            BENCH,
            f"{run.variant}: DB size at turn {mark}",
            "MB",
            [run.sizes_mb[mark]],
            goal=f"< {SIZE_GOAL_MB:.0f} MB" if goals and mark == max(marks) else "",
        )
        for mark in marks
    ]
    rows += [
        Row(BENCH, f"{run.variant}: per-turn time at turn {mark}", "s", run.overhead(mark))
        for mark in marks
    ]
    first, last = (
        statistics.median(run.overhead(min(marks))),
        statistics.median(run.overhead(max(marks))),
    )
    rows.append(
        Row(
            BENCH,
            f"{run.variant}: turn {max(marks)} / turn {min(marks)}",
            "x",
            [last / first],
            goal=f"<= {GROWTH_GOAL}x" if goals else "",
        )
    )
    return rows


def measure(marks: Sequence[int], *, postgres: bool = True) -> list[Row]:
    """Run every variant in this process, one after the other, and return the rows."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="agent-bench-memory-") as scratch:
        directory = Path(scratch)
        rows += rows_for(run_naive(directory, marks), marks, goals=False)
        plain = rows_for(run_plain_list(marks), marks, goals=False)
        rows += [row for row in plain if "DB size" not in row.name]
        path = directory / "agent.db"
        run = run_agent("agent (SQLite)", str(path), lambda: sqlite_size_mb(path), marks)
        rows += rows_for(run, marks, goals=True)
    if postgres:
        with postgres_database() as url:
            if url is not None:
                run = run_agent("agent (PostgreSQL)", url, lambda: postgres_size_mb(url), marks)
                rows += rows_for(run, marks, goals=True)
    return rows


def run(quick: bool = False) -> list[Row]:
    """Entry point for `python -m bench.run`; `quick` is the smoke-test size."""
    return measure((3, 10, 30) if quick else (10, 100, 1000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--marks", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--output", default=BENCH, help="JSON name under bench/results/")
    args = parser.parse_args(argv)
    rows = measure(sorted(args.marks), postgres=not args.no_postgres)
    print(table(rows))
    print(f"\nJSON: {write_results(rows, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
