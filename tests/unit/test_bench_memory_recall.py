"""Smoke test of bench/memory_recall.py on a fake model, so the bench cannot rot between runs.

The fake is a perfect reader: it answers a question with its fact whenever the fact is anywhere
in its prompt, and summarizes and extracts facts deterministically (tests/fakes.py). Recall then
measures only what each variant's memory put in front of the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from bench import memory_recall
from bench.memory_recall import QUESTIONS, VARIANTS
from tests.fakes import FakeChat, with_memory_jobs


def reads_its_prompt(messages: Sequence[BaseMessage]) -> str:
    """Answer a question with its fact if the prompt before it holds the fact, else small talk."""
    expected = dict(QUESTIONS).get(str(messages[-1].text))
    seen = " ".join(str(m.text) for m in messages[:-1]).lower()
    return f"That is {expected}." if expected and expected in seen else "Noted, thanks."


def test_the_four_variants_measure_recall_tokens_and_ttft_on_a_fake_model() -> None:
    model = FakeChat(reply=with_memory_jobs(reads_its_prompt), reports_usage=True)
    chosen = {"chat_model": model, "embeddings": None}
    runs = {variant: memory_recall.converse(variant, chosen, quick=True) for variant in VARIANTS}
    rows = {row.name: row for run in runs.values() for row in memory_recall.rows_for("fake", run)}

    def recall(variant: str, where: str) -> float:
        (share,) = rows[f"{variant}: recall {where}"].samples
        assert 0 <= share <= 100
        return share

    for variant, run in runs.items():
        turns = run.turns + run.later
        assert len(run.turns) == len(memory_recall.script(quick=True)) + len(QUESTIONS)
        assert len(run.later) == len(QUESTIONS)
        assert not any(turn.failed for turn in turns), variant
        assert all(math.isfinite(turn.ttft) and turn.ttft > 0 for turn in turns)
        tokens = rows[f"{variant}: prompt tokens per turn"].samples
        assert len(tokens) == len(run.turns) and all(count > 0 for count in tokens)
        assert rows[f"{variant}: TTFT, other turns"].samples
        recall(variant, "in a new thread")

    same_thread = "of evicted facts, same thread"
    assert recall("window only", same_thread) < recall("window + summary", same_thread) == 100
    assert recall("full history", same_thread) == 100
    assert recall("window + summary", "in a new thread") == 0  # a summary belongs to its thread
    assert recall("window + summary + long-term", "in a new thread") > 0  # facts follow the user
    assert any(turn.folded for turn in runs["window + summary"].turns)
    window = rows["window only: prompt tokens per turn"].samples
    full = rows["full history: prompt tokens per turn"].samples
    assert window[-1] < full[-1]  # the window keeps the prompt small, full history does not
