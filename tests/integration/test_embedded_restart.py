"""A thread survives a process restart: two processes share one SQLite checkpoint file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TURN = """
import json, sqlite3, sys
from langgraph.checkpoint.sqlite import SqliteSaver
from agent import Chatbot

path, thread, text = sys.argv[1:4]
saver = SqliteSaver(sqlite3.connect(path, check_same_thread=False))
bot = Chatbot(thread_id=thread, checkpointer=saver, temperature=0.0, max_reply_tokens=8)
before = [m.text for m in bot.graph.get_state(bot.config).values.get("messages", [])]
bot.say(text)
after = bot.graph.get_state(bot.config).values["messages"]
print(json.dumps({"before": before, "after": [m.text for m in after],
                  "input_tokens": after[-1].usage_metadata["input_tokens"]}))
"""


def turn_in_new_process(db: Path, thread: str, text: str) -> dict[str, Any]:
    """Run one turn in a fresh interpreter (its own embedded server) and report the thread."""
    result = subprocess.run(
        [sys.executable, "-c", TURN, str(db), thread, text],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_a_second_process_resumes_the_thread(tmp_path: Path) -> None:
    db = tmp_path / "threads.sqlite"
    first = turn_in_new_process(db, "t-restart", "My name is Zorblax.")
    assert first["before"] == []
    assert first["after"][0] == "My name is Zorblax."
    second = turn_in_new_process(db, "t-restart", "What is my name?")
    assert second["before"] == first["after"]
    assert second["after"][:2] == first["after"]
    assert second["after"][2] == "What is my name?"
    assert len(second["after"]) == 4
    # the restarted process sent the earlier exchange to its model too
    assert second["input_tokens"] > first["input_tokens"] + 5
