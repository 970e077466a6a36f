"""Memory under concurrency: turns/s with many conversations on ONE shared memory.

N conversations (distinct thread ids) take turns at once on one `open_memory(url)`, as a web
service does, answered by a fake model (no model time): the figure is the memory layer's own
throughput (lock, checkpoint, transcript, thread record). N = 1 (the same-run baseline), 10,
50 and 200, from OS threads (`say`) and from asyncio tasks (`asay`), on SQLite and PostgreSQL.
Each conversation takes TURNS turns (a round takes MIN_ROUND turns at least) with max_turns=2,
so the window slides and the transcript archive is written too. Every turn must succeed: an
error fails the bench.

Before the fix (issue 11.1), PostgreSQL stalled at 21+ conversations (~0.1 turns/s, then
PoolTimeout): each held thread lock kept one of the pool's 20 connections for the whole turn.

Usage: python -m bench.memory_concurrency [--levels 1 10 50 200] [--repeats 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import Row, table, write_results
from bench.memory_growth import postgres_database

BENCH = "11.1 memory concurrency"
LEVELS = (1, 10, 50, 200)
TURNS = 4
MIN_ROUND = 40  # turns per round at least, so a round at 1 conversation is not a blip
PATIENT = 600.0


def fake_model() -> Any:
    from tests.fakes import FakeChat

    return FakeChat(chunk_size=16)


def thread_round(memory: Any, conversations: int, turns: int) -> float:
    """All conversations at once from OS threads; turns/s over the round's wall time."""
    from agent.chatbot import Chatbot

    tag, errors = uuid.uuid4().hex[:8], []
    start = threading.Barrier(conversations + 1)

    def converse(n: int) -> None:
        try:
            bot = Chatbot(
                thread_id=f"{tag}-{n}", chat_model=fake_model(), memory=memory, max_turns=2
            )
            start.wait()
            for turn in range(turns):
                bot.say(f"conversation {n}, turn {turn}")
        except BaseException as error:  # noqa: BLE001 - counted and raised below
            errors.append(error)

    workers = [threading.Thread(target=converse, args=(n,)) for n in range(conversations)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} conversation(s) failed, first: {errors[0]!r}")
    return conversations * turns / seconds


def task_round(memory: Any, conversations: int, turns: int) -> float:
    """All conversations at once as asyncio tasks; turns/s over the round's wall time."""
    from agent.chatbot import Chatbot

    tag = uuid.uuid4().hex[:8]

    bots = [
        Chatbot(thread_id=f"{tag}-{n}", chat_model=fake_model(), memory=memory, max_turns=2)
        for n in range(conversations)
    ]

    async def converse(n: int) -> None:
        for turn in range(turns):
            await bots[n].asay(f"conversation {n}, turn {turn}")

    async def everyone() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(converse(n) for n in range(conversations)))
        return conversations * turns / (time.perf_counter() - began)

    return asyncio.run(everyone())


def measure_backend(
    name: str, url: str, levels: Sequence[int], repeats: int, turns: int
) -> list[Row]:
    """Rows of turns/s per concurrency level, threads then tasks, on one shared memory."""
    from agent.memory import open_memory

    rows: list[Row] = []
    with open_memory(url, lock_timeout=PATIENT) as memory:
        for style, round_ in (("OS threads", thread_round), ("asyncio tasks", task_round)):
            baseline: Row | None = None
            for level in levels:
                each = max(turns, -(-MIN_ROUND // level))  # small levels: enough turns to time
                samples = [round_(memory, level, each) for _ in range(repeats)]
                row = Row(BENCH, f"{name}, {level} conversations ({style})", "turns/s", samples)
                if baseline is None:
                    baseline = row
                else:
                    row.note = f"{row.median / baseline.median:.2f}x of 1 conversation"
                rows.append(row)
    return rows


def measure(
    levels: Sequence[int] = LEVELS, repeats: int = 3, turns: int = TURNS, postgres: bool = True
) -> list[Row]:
    """Every backend, every level, in this process."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="agent-bench-concurrency-") as scratch:
        rows += measure_backend("SQLite", str(Path(scratch) / "agent.db"), levels, repeats, turns)
    if postgres:
        with postgres_database() as url:
            if url is not None:
                rows += measure_backend("PostgreSQL", url, levels, repeats, turns)
    return rows


def run(quick: bool = False) -> list[Row]:
    """Entry point for `python -m bench.run`; `quick` is the smoke-test size."""
    if quick:
        return measure(levels=(1, 10), repeats=1, turns=2)
    return measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns", type=int, default=TURNS)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--output", default="memory_concurrency", help="JSON under bench/results/")
    args = parser.parse_args(argv)
    rows = measure(sorted(args.levels), args.repeats, args.turns, postgres=not args.no_postgres)
    print(table(rows))
    print(f"\nJSON: {write_results(rows, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
