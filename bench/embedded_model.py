"""Benchmarks on the real embedded model: cache-friendly eviction, stack overhead, concurrency."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI
from openai import OpenAI

from agent import Chatbot, Context
from agent.models import EmbeddedBackend
from agent.models.embedded import shared_server
from bench.common import Row, ratio

POEM = "Write a short poem about the sea, in eight lines."
TOPICS = [
    "the history of tea in China and how it travelled along trade routes",
    "why bridges are built with expansion joints and what happens without them",
    "how a bicycle stays upright when it moves and falls over when it stops",
    "the difference between weather and climate explained for a curious child",
    "how bread rises, what yeast eats, and why salt slows it down",
    "what makes a good password and why length beats cleverness",
]


def user_message(turn: int) -> str:
    """A deterministic ~60-word user message, so both variants see the same conversation."""
    topic = TOPICS[turn % len(TOPICS)]
    return (
        f"Turn {turn}. I have been reading about {topic}. Could you summarise the key idea in "
        "one short sentence, then give me one surprising fact about it? Please keep the answer "
        "brief, because I am taking notes and I want to compare it with what I read yesterday."
    )


def capped_model(max_reply_tokens: int) -> ChatOpenAI:
    """The project's embedded ChatOpenAI, deterministic and with short replies."""
    model = EmbeddedBackend().chat_model(
        Context(temperature=0.0, max_reply_tokens=max_reply_tokens)
    )
    assert isinstance(model, ChatOpenAI), "the benchmarks need the embedded backend"
    return model


def time_to_first_token(bot: Chatbot, text: str) -> float:
    """Seconds from sending a message to the first streamed piece (the reply is drained)."""
    start = time.perf_counter()
    first = float("nan")
    for piece in bot.stream(text):
        if first != first and piece:
            first = time.perf_counter() - start
    return first


def eviction_rows(turns: int = 60, max_turns: int = 12, reply_tokens: int = 32) -> list[Row]:
    """Row 3: TTFT with a full window, block eviction vs sliding one exchange per turn."""
    model = capped_model(reply_tokens)
    block = Chatbot(chat_model=model, max_turns=max_turns, low_water=0.6)
    slide = Chatbot(chat_model=model, max_turns=max_turns, low_water=1.0)
    samples: dict[str, list[float]] = {"block": [], "slide": []}
    for turn in range(1, turns + 1):
        for name, bot in (("block", block), ("slide", slide)):
            ttft = time_to_first_token(bot, user_message(turn))
            if turn > max_turns:  # only turns with a full window count
                samples[name].append(ttft)
    block_row = Row(
        "3 ttft full window",
        f"block eviction (max_turns={max_turns}, low_water=0.6)",
        "s",
        samples["block"],
    )
    slide_row = Row(
        "3 ttft full window",
        "slide one exchange per turn (low_water=1.0)",
        "s",
        samples["slide"],
    )
    block_row.goal = f"ratio {ratio(block_row, slide_row):.2f}x of sliding (goal <= 0.30x)"
    return [block_row, slide_row]


def overhead_rows(repeats: int = 20, reply_tokens: int = 16) -> list[Row]:
    """Row 4: TTFT through Chatbot.stream vs a bare openai client sending the same messages."""
    endpoint = shared_server().endpoint
    model = capped_model(reply_tokens)
    client = OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0)
    question = "Name three colours of the rainbow."
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        bot = Chatbot(chat_model=model, thread_id=str(uuid.uuid4()))
        sent = [
            {"role": m.type.replace("human", "user"), "content": str(m.content)}
            for m in bot.history()
        ]
        sent.append({"role": "user", "content": question})
        ours.append(time_to_first_token(bot, question))
        start = time.perf_counter()
        first = float("nan")
        stream = client.chat.completions.create(
            model="smollm2", messages=sent, stream=True, max_tokens=reply_tokens, temperature=0.0
        )
        for event in stream:
            if first != first and event.choices and event.choices[0].delta.content:
                first = time.perf_counter() - start
        bare.append(first)
    ours_row = Row("4 stack overhead", "Chatbot.stream time to first token", "s", ours)
    bare_row = Row("4 stack overhead", "bare openai client, same messages and server", "s", bare)
    extra_ms = (ours_row.median - bare_row.median) * 1000
    ours_row.goal = (
        f"ratio {ratio(ours_row, bare_row):.2f}x of bare, +{extra_ms:.1f} ms (goal <= 1.10x)"
    )
    return [ours_row, bare_row]


def reply_tokens_of(bot: Chatbot) -> int:
    """Output tokens of the thread's last reply, from its recorded usage."""
    reply = bot.history()[-1]
    usage: Any = reply.usage_metadata if isinstance(reply, AIMessage) else None
    return int(usage["output_tokens"]) if usage else len(str(reply.content).split())


def run_concurrently(worker: Any, shares: list[Any]) -> float:
    """Run `worker(share)` for every share in its own thread; the wall seconds until all end."""
    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def aggregate_tokens_per_second(streams: int, requests: int, reply_tokens: int) -> float:
    """Run `requests` replies spread over `streams` concurrent threads; tokens/s over wall time."""
    model = capped_model(reply_tokens)
    bots = [Chatbot(chat_model=model) for _ in range(requests)]
    produced: list[int] = []
    lock = threading.Lock()

    def worker(mine: list[Chatbot]) -> None:
        for bot in mine:
            bot.say(POEM)
            with lock:
                produced.append(reply_tokens_of(bot))

    seconds = run_concurrently(worker, [bots[i::streams] for i in range(streams)])
    return sum(produced) / seconds


def bare_tokens_per_second(streams: int, requests: int, reply_tokens: int) -> float:
    """The same load straight to the server with the openai client: what the server can give."""
    endpoint = shared_server().endpoint
    client = OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0)
    produced: list[int] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        for _ in range(count):
            stream = client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": POEM}],
                stream=True,
                max_tokens=reply_tokens,
                temperature=0.0,
                stream_options={"include_usage": True},
            )
            tokens = sum(event.usage.completion_tokens for event in stream if event.usage)
            with lock:
                produced.append(tokens)

    seconds = run_concurrently(worker, [len(range(requests)[i::streams]) for i in range(streams)])
    return sum(produced) / seconds


def concurrency_rows(repeats: int = 3, requests: int = 8, reply_tokens: int = 64) -> list[Row]:
    """Row 5: aggregate tokens/s with 1 vs 4 concurrent threads, beside the bare server's own."""
    ours: dict[int, list[float]] = {1: [], 4: []}
    bare: dict[int, list[float]] = {1: [], 4: []}
    for _ in range(repeats):  # interleaved, so both see the same machine
        for streams in (1, 4):
            ours[streams].append(aggregate_tokens_per_second(streams, requests, reply_tokens))
            bare[streams].append(bare_tokens_per_second(streams, requests, reply_tokens))
    four_row = Row("5 concurrency", "Chatbot, 4 concurrent threads, aggregate", "tok/s", ours[4])
    one_row = Row("5 concurrency", "Chatbot, 1 thread, aggregate", "tok/s", ours[1])
    bare_four = Row("5 concurrency", "bare openai client, 4 concurrent streams", "tok/s", bare[4])
    bare_one = Row("5 concurrency", "bare openai client, 1 stream", "tok/s", bare[1])
    four_row.goal = f"{ratio(four_row, one_row):.2f}x of one (goal >= 2x)"
    bare_four.goal = f"{ratio(bare_four, bare_one):.2f}x of one: what the server itself gives"
    return [four_row, one_row, bare_four, bare_one]


def run(quick: bool = False) -> list[Row]:
    """All embedded-model rows; `quick` shrinks them to a smoke test."""
    if quick:
        return [
            *eviction_rows(turns=4, max_turns=2, reply_tokens=4),
            *overhead_rows(repeats=2, reply_tokens=4),
            *concurrency_rows(repeats=1, requests=2, reply_tokens=4),
        ]
    return [*eviction_rows(), *overhead_rows(), *concurrency_rows()]
