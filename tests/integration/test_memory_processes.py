"""Several real processes on one database: migrations at once, one thread, two writers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from agent.memory import get_thread, open_memory
from tests.integration.test_memory_support import (
    finish,
    migrate_worker,
    notes,
    open_bot,
    reply_is_for,
    start,
    turn_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_together(go: Path, workers: list[tuple[object, tuple[object, ...]]], log: Path) -> None:
    """Start workers, wait until each is ready, release them at once, expect clean exits."""
    processes = [start(target, *args) for target, args in workers]  # type: ignore[arg-type]
    wait_for(lambda: sum(line.startswith("ready") for line in notes(log)) == len(processes))
    go.touch()
    assert [finish(p) for p in processes] == [0] * len(processes)


def test_migrations_from_three_processes_at_once_on_an_empty_database(
    url: str, tmp_path: Path
) -> None:
    log, go = tmp_path / "migrate.log", tmp_path / "go"
    run_together(go, [(migrate_worker, (url, str(log), str(go)))] * 3, log)
    assert notes(log).count("migrated") == 3
    bot, _ = open_bot(url, "after-migrate")
    try:
        bot.say("works")
        assert get_thread(bot.memory, "after-migrate").messages == 2
    finally:
        bot.memory.close()


def test_a_second_process_continues_the_thread_of_the_first(url: str, tmp_path: Path) -> None:
    log = tmp_path / "turns.log"
    for text in ("from process one", "from process two"):
        go = tmp_path / f"go-{uuid.uuid4().hex}"
        go.touch()
        assert finish(start(turn_worker, url, "shared", str(log), text, str(go), {})) == 0
    replies = [line for line in notes(log) if line.startswith("done")]
    assert replies[1] == "done Reply to <from process two> after 2 user messages, " + "z" * 24
    with open_memory(url) as memory:
        assert get_thread(memory, "shared").messages == 4


def test_two_writers_on_one_thread_take_turns(url: str, tmp_path: Path) -> None:
    log, go = tmp_path / "writers.log", tmp_path / "go"
    slow = {"delay": 0.01}  # each reply streams for ~0.1 s, so the turns overlap in time
    run_together(
        go,
        [(turn_worker, (url, "contended", str(log), text, str(go), slow)) for text in "AB"],
        log,
    )
    bot, _ = open_bot(url, "contended")
    try:
        saved = bot.transcript()
        assert len(saved) == 4
        for question, reply in zip(saved[::2], saved[1::2], strict=True):
            assert reply_is_for(reply, question)  # no interleaving: each reply follows its question
        seen = sorted(int(str(reply.text).split(" after ")[1].split()[0]) for reply in saved[1::2])
        assert seen == [1, 2]  # the second turn saw the first: no turn lost
    finally:
        bot.memory.close()


def test_a_busy_thread_is_refused_clearly_when_waiting_is_not_allowed(
    url: str, tmp_path: Path
) -> None:
    log, go = tmp_path / "busy.log", tmp_path / "go"
    options = {"delay": 0.05, "memory": {"lock_timeout": 0.0}}
    run_together(
        go,
        [(turn_worker, (url, "refused", str(log), text, str(go), options)) for text in "AB"],
        log,
    )
    outcomes = sorted(line.split()[0] for line in notes(log) if not line.startswith("ready"))
    assert outcomes == ["busy", "done"]
    bot, _ = open_bot(url, "refused")
    try:
        assert len(bot.transcript()) == 2
    finally:
        bot.memory.close()
