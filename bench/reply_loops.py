"""Runaway replies on the embedded model: the tutorial's four conversations, before and after.

"before" is the previous default: no reply cap (a reply ran until the slot's context was full)
and no repetition controls, with the window still reserving 512 tokens for a reply. "after" is
today's default `EmbeddedBackend()`: replies capped at the window's reserve, llama.cpp's repeat
and DRY penalties on. Both run through the same graph (`build_graph(backend=...)`), with the same
seeds, so the only difference is the backend's settings.

Per reply: did it loop (the same 6-word sequence 3 times or more outside code), was it cut by
the length limit, how many tokens, how long. The last repetition of the "after" arm is also
written as a readable transcript with timings to bench/results/reply_loops.md (docs/models.md
quotes it).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent import Context, build_graph
from agent.models import EmbeddedBackend
from agent.models.llamacpp.paths import default_model_path
from agent.models.llamacpp.sampling import Repetition
from agent.models.llamacpp.server import EmbeddedServer
from agent.models.llamacpp.settings import ServerSettings, default_threads
from bench.common import RESULTS_DIR, Row

# The tutorial's four conversations (persona, user turns), reconstructed from its text.
CONVERSATIONS: dict[str, tuple[str, list[str]]] = {
    "Priya's web scraper": (
        "assistant",
        [
            "Hi, I'm Priya. My favourite language is Python.",
            "I want to build a web scraper. Can you suggest a project idea?",
            "How long would that take a beginner?",
        ],
    ),
    "the tutor's dictionary questions": (
        "tutor",
        [
            "What is a dictionary in Python?",
            "How do I add a new key to it?",
            "How do I loop over its keys and values?",
        ],
    ),
    "the cooking follow-up": (
        "cooking_assistant",
        [
            "Give me a simple recipe for chicken curry.",
            "What can I substitute for the main protein?",
        ],
    ),
    "the 5-turn travel planner": (
        "travel_planner",
        [
            "I want to plan a holiday. Can you help?",
            "My budget is about 2,000 euros.",
            "I can travel for one week in May.",
            "I love food markets, hiking and old towns.",
            "So where should I go, and what should I do each day?",
        ],
    ),
}
LOOP_WORDS = 6
LOOP_REPEATS = 3


@dataclass(frozen=True)
class Seeded(Repetition):
    """Repetition controls plus llama.cpp's per-request `seed`, so both arms draw alike."""

    seed: int = 0


class PreviousDefaults(EmbeddedBackend):
    """The old behaviour: no reply cap (the server stops when the slot is full), 512 reserved."""

    def default_reply_cap(self, size: int | None) -> int:
        """As good as none: the slot's whole context."""
        return self.context_size()

    def budget(self, context: Context) -> int:
        """The old window: the slot minus a 512-token reserve the reply did not respect."""
        return self.context_size() - 512


CODE_BLOCK = re.compile(r"```.*?(```|$)", re.S)


def loops(text: str) -> bool:
    """Whether a reply's prose repeats one 6-word sequence 3 times or more (a runaway reply).

    Fenced code is left out: a program and its printed output repeat on purpose.
    """
    words = re.findall(r"\w+", CODE_BLOCK.sub(" ", text).lower())
    grams = Counter(tuple(words[i : i + LOOP_WORDS]) for i in range(len(words) - LOOP_WORDS + 1))
    return any(count >= LOOP_REPEATS for count in grams.values())


@dataclass
class Reply:
    """One measured reply."""

    conversation: str
    user: str
    text: str
    seconds: float
    tokens: int
    cut: bool

    @property
    def looped(self) -> bool:
        return loops(self.text)


@dataclass
class Arm:
    """One set of settings and every reply it produced."""

    name: str
    replies: list[Reply] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)  # messages evicted per conversation


def converse(
    backend: EmbeddedBackend, title: str, arm: Arm, reply_tokens: int | None = None
) -> list[Reply]:
    """Run one conversation through the graph, timing each reply (`reply_tokens`: a cap)."""
    persona, turns = CONVERSATIONS[title]
    graph = build_graph(backend=backend, checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    replies: list[Reply] = []
    context = Context(persona=persona, max_reply_tokens=reply_tokens)
    for user in turns:
        start = time.perf_counter()
        graph.invoke({"messages": [HumanMessage(user)]}, config, context=context)
        seconds = time.perf_counter() - start
        reply = graph.get_state(config).values["messages"][-1]
        assert isinstance(reply, AIMessage)
        usage = reply.usage_metadata
        metadata = reply.response_metadata
        replies.append(
            Reply(
                title,
                user,
                str(reply.text),
                seconds,
                int(usage["output_tokens"]) if usage else 0,
                metadata.get("finish_reason") == "length",
            )
        )
    arm.archived.append(int(graph.get_state(config).values.get("archived", 0)))
    arm.replies += replies
    return replies


def rows_for(arm: Arm) -> list[Row]:
    """The arm's figures as bench rows."""
    replies = arm.replies
    looped = sum(r.looped for r in replies)
    cut = sum(r.cut for r in replies)
    label = f"{arm.name}: "
    rate = Row(
        "7 runaway replies",
        label + "replies that loop",
        "%",
        [100.0 * looped / len(replies)],
        note=f"{looped} of {len(replies)} replies; {cut} cut by the length limit",
    )
    tokens = Row("7 runaway replies", label + "reply length", "tokens", [r.tokens for r in replies])
    seconds = Row("7 runaway replies", label + "time per reply", "s", [r.seconds for r in replies])
    evicted = Row(
        "7 runaway replies",
        label + "messages evicted by the end of a conversation",
        "msgs",
        [float(n) for n in arm.archived],
    )
    return [rate, tokens, seconds, evicted]


def transcript(replies: list[Reply]) -> str:
    """A readable Markdown record of conversations, with each reply's time and length."""
    lines: list[str] = []
    current = ""
    for reply in replies:
        if reply.conversation != current:
            current = reply.conversation
            lines += ["", f"#### {current} ({CONVERSATIONS[current][0]})", ""]
        marks = " (cut at the cap)" if reply.cut else ""
        marks += " (LOOPS)" if reply.looped else ""
        lines += [
            f"> **You:** {reply.user}",
            ">",
            f"> **Bot** ({reply.seconds:.1f} s, {reply.tokens} tokens{marks}): "
            + " ".join(reply.text.split()),
            "",
        ]
    return "\n".join(lines).strip() + "\n"


def generation_speed(threads: int, replies: int, reply_tokens: int) -> list[float]:
    """Tokens/s llama.cpp reports for replies from a one-slot server with `threads` threads."""
    import httpx

    settings = ServerSettings(
        model_path=default_model_path(), slots=1, threads=threads, api_key="bench"
    )
    server = EmbeddedServer(settings)
    speeds: list[float] = []
    try:
        for number in range(replies):
            body = {
                "model": "smollm2",
                "messages": [{"role": "user", "content": f"({number}) Tell me about the sea."}],
                "max_tokens": reply_tokens,
                "temperature": 0.0,
            }
            response = httpx.post(
                f"{server.base_url}/chat/completions",
                json=body,
                headers={"Authorization": "Bearer bench"},
                timeout=600,
            )
            response.raise_for_status()
            speeds.append(float(response.json()["timings"]["predicted_per_second"]))
    finally:
        server.stop()
    return speeds


def thread_rows(repeats: int, reply_tokens: int) -> list[Row]:
    """Generation speed with the default threads (half the CPUs) vs all of them."""
    cpus = os.cpu_count() or 2
    counts = sorted({default_threads(cpus), cpus})
    samples: dict[int, list[float]] = {count: [] for count in counts}
    for _ in range(repeats):  # interleaved, so each count sees the same machine
        for count in counts:
            samples[count] += generation_speed(count, 2, reply_tokens)
    load = os.getloadavg()[0]
    return [
        Row(
            "7 runaway replies",
            f"generation with {count} of {cpus} CPU threads"
            + (" (default)" if count == default_threads(cpus) else ""),
            "tok/s",
            samples[count],
            note=f"load average {load:.1f} when measured",
        )
        for count in counts
    ]


def run(quick: bool = False) -> list[Row]:
    """Both arms over the four conversations (`quick`: one short conversation, short replies)."""
    seeds = [1] if quick else [1, 2, 3]
    titles = ["the cooking follow-up"] if quick else list(CONVERSATIONS)
    cap = 16 if quick else None
    before, after = Arm("before (no cap, no repetition controls)"), Arm("after (defaults)")
    last: list[Reply] = []
    for seed in seeds:
        for title in titles:  # interleaved, so both arms see the same machine
            off = Seeded(repeat_penalty=1.0, dry_multiplier=0.0, seed=seed)
            converse(PreviousDefaults(repetition=off), title, before, cap)
            last += converse(EmbeddedBackend(repetition=Seeded(seed=seed)), title, after, cap)
        if seed != seeds[-1]:
            last = []
    if not quick:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "reply_loops.md").write_text(transcript(last))
    threads = thread_rows(1, 8) if quick else thread_rows(3, 64)
    return [*rows_for(before), *rows_for(after), *threads]
