"""Memory beyond the window (issue 14): recall, prompt tokens per turn and time to first token.

One scripted conversation states facts early (name, job, diet, home city, favourite language),
talks about other things until the window has evicted them, changes one fact (a move from Paris
to Lyon), then asks about every fact in the same thread, and again in a new thread of the same
user. Four variants, side by side, on the same model:

- window only: the plain sliding window (`summary=False`, no user);
- window + summary: what the window evicts is folded into the running summary;
- window + summary + long-term: the same, with a user whose facts are learned and recalled;
- full history: no window at all (`max_turns` huge, `summary=False`) until the model's context
  overflows.

Recall is the share of questions whose reply contains the fact (exact words, case-insensitive).
Prompt tokens per turn come from the model's own usage report. Time to first token is measured
from sending a message to its first streamed piece, after the previous turn's after-reply work
is done (a person reads a reply before typing the next message); that work's own duration is
reported too. Turns are grouped: "folding" turns (a block was evicted and folded after their
reply), "new-prefix" turns (the first turn whose prompt lost a block: a cold prompt cache) and
the others.

Runs on the embedded SmolLM2-135M and, when it is available, on the measurement model
(Qwen2.5-Coder-1.5B, bench/measurement_model.py); SmolLM2 is too weak to judge quality, so its
recall figures say little about the design.

    python -m bench.memory_recall [--quick] [--models smollm2 qwen]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage

from agent import Chatbot
from agent.errors import AgentError
from agent.memory import open_memory
from agent.models import EmbeddedBackend
from agent.models.backend import Backend
from bench.common import Row, table

FACTS = [
    "Hi! My name is Priya Raman.",
    "I work as a nurse at the children's hospital.",
    "I'm vegetarian, so please never suggest meat or fish.",
    "I live in Paris, near the canal.",
    "My favourite programming language is Python.",
]
FILLERS = [
    "Why do bridges have expansion joints?",
    "How does yeast make bread rise?",
    "What makes a good password?",
    "Why does a bicycle stay upright when it moves?",
    "What is the difference between weather and climate?",
    "How did tea travel from China to Europe?",
    "Why is the sky blue?",
]
CHANGE = "Big news: I just moved from Paris to Lyon."
QUESTIONS = [
    ("What is my name?", "priya"),
    ("What is my job?", "nurse"),
    ("What is my diet? Answer in one word.", "vegetarian"),
    ("Which city do I live in now?", "lyon"),
    ("Which programming language do I like best?", "python"),
]
VARIANTS = {
    "window only": {"summary": False},
    "window + summary": {"summary": True},
    "window + summary + long-term": {"summary": True, "user": True},
    "full history": {"summary": False, "max_turns": 100_000},
}
WINDOW_TURNS = 4
REPLY_TOKENS = 48


@dataclass
class Turn:
    """What one turn measured."""

    text: str
    reply: str = ""
    ttft: float = float("nan")
    after_reply: float = 0.0
    prompt_tokens: int | None = None
    new_prefix: bool = False  # its prompt lost a block the previous turn had
    folded: bool = False  # a block was evicted and folded after its reply
    failed: str = ""


@dataclass
class Run:
    """One variant's conversation: the same-thread turns, then the new-thread questions."""

    variant: str
    turns: list[Turn] = field(default_factory=list)
    later: list[Turn] = field(default_factory=list)


def script(quick: bool) -> list[str]:
    """The same-thread messages: facts, small talk, the change, small talk (questions after)."""
    fillers = FILLERS[:3] if quick else FILLERS
    half = len(fillers) // 2
    return [*FACTS, *fillers[:half], CHANGE, *fillers[half:]]


def prompt_tokens(bot: Chatbot) -> int | None:
    """Input tokens of the thread's latest reply, as the model reported them."""
    reply = bot.history()[-1]
    usage: Any = reply.usage_metadata if isinstance(reply, AIMessage) else None
    return int(usage["input_tokens"]) if usage else None


def one_turn(bot: Chatbot, text: str) -> Turn:
    """Send one message; time its first piece and the after-reply work that follows."""
    turn = Turn(text)
    start = time.perf_counter()
    pieces: list[str] = []
    try:
        for piece in bot.stream(text):
            if not pieces:
                turn.ttft = time.perf_counter() - start
            pieces.append(piece)
    except AgentError as error:  # the full-history variant ends when the context overflows
        turn.failed = type(error).__name__
        return turn
    turn.reply = "".join(pieces)
    done = time.perf_counter()
    bot.wait()
    turn.after_reply = time.perf_counter() - done
    report = bot.last_turn
    turn.new_prefix = bool(report and report.evicted)
    values = bot.graph.get_state(bot.config).values
    turn.folded = bool(values.get("compacted"))
    turn.prompt_tokens = prompt_tokens(bot)
    return turn


def converse(variant: str, model: dict[str, Any], quick: bool) -> Run:
    """One variant through the whole script, on a fresh in-memory database.

    `model` holds the Chatbot keywords that choose the model: `backend=` for a served model,
    or `chat_model=` (and `embeddings=`) for a fake one (the smoke test).
    """
    settings = VARIANTS[variant]
    user = f"bench-{uuid.uuid4().hex[:8]}" if settings.get("user") else None
    run = Run(variant)
    with open_memory("memory") as memory:
        common: dict[str, Any] = {
            **model,
            "memory": memory,
            "temperature": 0.0,
            "max_reply_tokens": REPLY_TOKENS,
            "max_turns": settings.get("max_turns", WINDOW_TURNS),
            "summary": settings["summary"],
            "user_id": user,
        }
        bot = Chatbot(**common)
        for text in [*script(quick), *(q for q, _ in QUESTIONS)]:
            run.turns.append(one_turn(bot, text))
            if run.turns[-1].failed:
                break
        later = Chatbot(**common)  # a new thread of the same user
        for question, _ in QUESTIONS:
            run.later.append(one_turn(later, question))
        bot.close()
        later.close()
    return run


def recall(turns: Sequence[Turn]) -> float:
    """Share of the questions answered with their fact (a failed turn counts as wrong)."""
    expected = dict(QUESTIONS)
    asked = [t for t in turns if t.text in expected]
    right = [t for t in asked if not t.failed and expected[t.text] in t.reply.lower()]
    return len(right) / len(QUESTIONS)


def median(values: Sequence[float]) -> float:
    """The median, or NaN for none."""
    return statistics.median(values) if values else float("nan")


def rows_for(model: str, run: Run) -> list[Row]:
    """The variant's rows: recall here and in a new thread, prompt tokens, TTFT by kind of turn."""
    name, turns = run.variant, run.turns
    overflow = next((n for n, t in enumerate(turns, 1) if t.failed), None)
    ended = f"; context overflowed at turn {overflow}" if overflow else ""
    tokens = [float(t.prompt_tokens) for t in turns if t.prompt_tokens is not None]
    early, late = tokens[:5], tokens[-5:]
    folding = [t.ttft for t in turns if t.folded and not t.failed]
    fresh = [t.ttft for t in turns if t.new_prefix and not t.failed]
    other = [t.ttft for t in turns if not (t.folded or t.new_prefix or t.failed)]
    after = [t.after_reply for t in turns if t.folded]
    bench = f"14 memory recall, {model}"
    return [
        Row(bench, f"{name}: recall of evicted facts, same thread", "%", [100 * recall(turns)],
            note=ended.lstrip("; ")),
        Row(bench, f"{name}: recall in a new thread", "%", [100 * recall(run.later)]),
        Row(bench, f"{name}: prompt tokens per turn", "tok", tokens,
            goal=f"first 5 turns {median(early):.0f}, last 5 {median(late):.0f}"),
        Row(bench, f"{name}: TTFT, turns that fold a summary after the reply", "s", folding,
            goal=f"{median(folding) / median(other):.2f}x of other turns (goal <= 1.2x)"
            if folding else ""),
        Row(bench, f"{name}: TTFT, first turns with a new prefix", "s", fresh,
            goal=f"{median(fresh) / median(other):.2f}x of other turns (a cold prompt cache)"
            if fresh else ""),
        Row(bench, f"{name}: TTFT, other turns", "s", other),
        Row(bench, f"{name}: after-reply work on folding turns (off the critical path)", "s",
            after),
    ]  # fmt: skip


@contextmanager
def served(model: str) -> Iterator[Backend | str]:
    """The backend for a model name, or why it is unavailable."""
    if model == "smollm2":
        yield EmbeddedBackend()
        return
    from bench.measurement_model import measurement_model, serve

    found = measurement_model()
    if found.path is None:
        yield found.reason
        return
    with serve(found.path, context=4096, slots=1) as server:
        endpoint: Any = server.endpoint  # type: ignore[attr-defined]
        yield EmbeddedBackend(endpoint.base_url, endpoint.api_key)


def measure(model: str, quick: bool) -> list[Row]:
    """All variants on one model (or one row saying why the model is unavailable)."""
    with served(model) as backend:
        if isinstance(backend, str):
            return [Row(f"14 memory recall, {model}", "unavailable", "%", [], note=backend)]
        rows: list[Row] = []
        for variant in VARIANTS:
            print(f"  {model}: {variant}...", file=sys.stderr, flush=True)
            rows += rows_for(model, converse(variant, {"backend": backend}, quick))
        return rows


def run(quick: bool = False, models: Sequence[str] = ("smollm2", "qwen")) -> list[Row]:
    """`make bench` rows (`quick`: fewer small-talk turns, SmolLM2 only)."""
    chosen = ("smollm2",) if quick else models
    return [row for model in chosen for row in measure(model, quick)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", nargs="+", default=["smollm2", "qwen"])
    args = parser.parse_args(argv)
    rows = [row for model in args.models for row in measure(model, args.quick)]
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
