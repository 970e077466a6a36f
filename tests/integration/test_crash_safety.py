"""Crash safety: SIGKILL a real process at random points of a turn, then resume the thread.

Each trial is one worker process (forked from a warm server) that takes a few turns on its own
thread and kills itself with SIGKILL during the last one: before the model call, mid-stream, or
while the turn is being saved. The test process then opens the same database and checks that
the thread is valid (alternating user/assistant, every reply complete and answering its own
question, nothing stored that would make the next model input invalid), that every turn the
worker finished is there, and that the conversation continues.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agent.memory import get_thread
from agent.window import valid_messages
from tests.fakes import chat_calls
from tests.integration.test_memory_support import (
    crash_worker,
    finish,
    notes,
    open_bot,
    postgres_database,
    random_phases,
    reply_is_for,
    start,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 30


def check_pairs(messages: list[BaseMessage]) -> list[str]:
    """Assert the history is user/assistant pairs with complete replies; return the questions."""
    assert len(messages) % 2 == 0, [m.text for m in messages]
    questions = []
    for question, reply in zip(messages[::2], messages[1::2], strict=True):
        assert isinstance(question, HumanMessage), question
        assert isinstance(reply, AIMessage), reply
        assert reply_is_for(reply, question), (question.text, reply.text)
        assert not reply.response_metadata.get("interrupted"), reply
        questions.append(str(question.text))
    return questions


def resume_and_check(url: str, thread_id: str, log: Path, turns: int) -> str:
    """Open the thread in this process, check it, continue it; return what the kill hit."""
    finished = [line for line in notes(log) if line.startswith("done")]
    bot, model = open_bot(url, thread_id)
    try:
        window = bot.graph.get_state(bot.config).values.get("messages", [])
        assert valid_messages(window, turn_pending=False) == window, "invalid message stored"
        questions = check_pairs(bot.transcript())
        assert questions == [f"turn {n}" for n in range(len(questions))], questions
        assert len(finished) <= len(questions) <= turns, (finished, questions)

        reply = bot.say("after the crash")
        sent = chat_calls(model.calls)[-1]  # not the summarizer's call after the reply
        assert [m.type for m in sent] == ["system"] + ["human", "ai"] * (len(sent) // 2 - 1) + [
            "human"
        ]
        assert sent[-1].text == "after the crash"
        assert reply.startswith("Reply to <after the crash>")
        after = check_pairs(bot.transcript())
        assert after == [*questions, "after the crash"]
        assert get_thread(bot.memory, thread_id).messages == 2 * len(after)
        return "saved" if len(questions) == turns else "lost"
    finally:
        bot.memory.close()


def run_trials(url: str, tmp_path: Path, seed: int) -> Counter[str]:
    """Run the kill trials against one database; count where the kills landed."""
    outcomes: Counter[str] = Counter()
    for number, (phase, turns, fraction) in enumerate(random_phases(TRIALS, seed)):
        thread_id, log = f"crash-{number}-{uuid.uuid4().hex[:6]}", tmp_path / f"trial-{number}.log"
        worker = start(crash_worker, url, thread_id, str(log), turns, phase, fraction)
        assert finish(worker) == -signal.SIGKILL, f"trial {number} was not killed"
        outcomes[f"{phase}:{resume_and_check(url, thread_id, log, turns)}"] += 1
    print(f"kills by phase and outcome of the interrupted turn: {dict(outcomes)}")
    return outcomes


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def test_sigkill_at_random_points_never_corrupts_a_sqlite_thread(tmp_path: Path) -> None:
    outcomes = run_trials(str(tmp_path / "crash.db"), tmp_path, seed=4)
    assert sum(outcomes.values()) == TRIALS
    assert {key.split(":")[0] for key in outcomes} == {
        "before_model",
        "mid_stream",
        "checkpoint_write",
    }


@pytest.mark.postgres
def test_sigkill_at_random_points_never_corrupts_a_postgres_thread(
    tmp_path: Path, pg_url: str
) -> None:
    outcomes = run_trials(pg_url, tmp_path, seed=5)
    assert sum(outcomes.values()) == TRIALS
