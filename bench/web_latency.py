"""Send -> first token and send -> end of reply: the web page, the SDK, and Chatbot in process.

Measured in one run, with the same fake model (fixed reply, fixed chunk timing: bench/web_graph.py)
and then the embedded model:

- `Chatbot.stream` in process (no server): the floor;
- agent-chat-ui's approach, `client.runs.stream` through the SDK, on a stock `langgraph dev`
  (our langgraph.json without the web app) and on ours (the web app installs the queue wake-up);
- this page in Debian's headless chromium, timed inside the page from the Send keypress to the
  first token painted and to the last; plus the page's main-thread CPU time per streamed token
  (Chrome's Performance.getMetrics TaskDuration) and the Markdown rendering time per token.

    .venv/bin/python -m bench.web_latency --runs 10 [--skip-embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langgraph_sdk import get_client  # noqa: E402

from agent import Chatbot  # noqa: E402
from agent.server.dev import ServerProcess  # noqa: E402
from bench.common import Row  # noqa: E402
from bench.web_graph import CHUNK_SECONDS, CHUNKS, bench_model  # noqa: E402

BENCH = "16 web page latency"
WEB_GRAPH = ROOT / "bench" / "web_graph.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMBEDDED_ENV = {"AGENT_MAX_REPLY_TOKENS": "32", "AGENT_TEMPERATURE": "0"}
Sample = tuple[float, float]  # seconds: (first token, end of reply)


@contextmanager
def dev_server(directory: Path, *, with_page: bool) -> Iterator[ServerProcess]:
    """`langgraph dev` with graphs `bench` and `chatbot`; `with_page=False` drops the web app."""
    from tests.integration.server_harness import start_dev_server

    server = start_dev_server(
        directory / ("page" if with_page else "stock"),
        env=EMBEDDED_ENV,
        graphs={"bench": f"{WEB_GRAPH}:graph"},
        web_app=with_page,
    )
    try:
        yield server
    finally:
        server.stop()


def in_process(runs: int, embedded: bool) -> list[Sample]:
    """Chatbot.stream on one thread, the fake (or the embedded) model, memory in SQLite."""
    options: dict[str, Any] = {"max_reply_tokens": 32, "temperature": 0.0} if embedded else {}
    model = None if embedded else bench_model()
    samples = []
    with Chatbot(thread_id=str(uuid.uuid4()), chat_model=model, **options) as bot:
        for turn in range(runs + 1):  # the first turn warms up (model load, SQLite)
            start, first = time.perf_counter(), None
            for piece in bot.stream(f"Say hi in a few words. ({turn})"):
                if first is None and piece:
                    first = time.perf_counter() - start
            total = time.perf_counter() - start
            if turn:
                samples.append((first if first is not None else total, total))
    return samples


async def sdk(url: str, graph: str, runs: int) -> list[Sample]:
    """agent-chat-ui's approach: runs.stream with messages-tuple and values, one thread."""
    samples = []
    async with get_client(url=url) as client:
        thread = await client.threads.create()
        for turn in range(runs + 1):
            start, first = time.perf_counter(), None
            async for part in client.runs.stream(
                thread["thread_id"],
                graph,
                input={"messages": [{"role": "user", "content": f"Say hi. ({turn})"}]},
                stream_mode=["values", "messages-tuple"],
            ):
                if part.event == "error":
                    raise RuntimeError(f"run failed: {part.data}")
                if first is None and part.event == "messages" and part.data[0].get("content"):
                    first = time.perf_counter() - start
            total = time.perf_counter() - start
            if turn:
                samples.append((first if first is not None else total, total))
    return samples


def page_samples(url: str, graph: str, runs: int) -> tuple[list[Sample], list[float], list[float]]:
    """The page in chromium: (first token, end) per reply, CPU ms per token, render ms per token."""
    from playwright.sync_api import sync_playwright

    samples: list[Sample] = []
    cpu_per_token: list[float] = []
    render_per_token: list[float] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        page = browser.new_page()
        page.set_default_timeout(120_000)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(f"{url}/chat?graph={graph}")
        page.wait_for_selector("#persona option", state="attached")
        for turn in range(runs + 1):
            before = task_seconds(cdp)
            page.fill("#message", f"Say hi in a few words. ({turn})")
            page.press("#message", "Enter")
            page.wait_for_selector(f'body[data-replies="{turn + 1}"]', state="attached")
            metric = page.evaluate(f"window.chatMetrics[{turn}]")
            spent_ms = (task_seconds(cdp) - before) * 1000
            if not turn:
                continue  # warm-up (thread creation, JIT)
            first = metric["firstPaintAt"] or metric["firstTokenAt"]
            samples.append(
                ((first - metric["sentAt"]) / 1000, (metric["endAt"] - metric["sentAt"]) / 1000)
            )
            tokens = max(1, int(metric["tokens"]))
            cpu_per_token.append(spent_ms / tokens)
            render_per_token.append(float(metric["renderMs"]) / tokens)
        browser.close()
    return samples, cpu_per_token, render_per_token


def task_seconds(cdp: Any) -> float:
    """Main-thread task time of the page so far (Chrome DevTools Protocol)."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def rows_for(label: str, model: str, samples: list[Sample], note: str = "") -> list[Row]:
    """Two rows (first token, end of reply) for one path."""
    return [
        Row(
            BENCH,
            f"{label} ({model}): send -> first token",
            "s",
            [s[0] for s in samples],
            note=note,
        ),
        Row(BENCH, f"{label} ({model}): send -> end of reply", "s", [s[1] for s in samples]),
    ]


def measure(runs: int, skip_embedded: bool) -> list[Row]:
    """Every path, fake model first, then the embedded model."""
    fake = f"fake model, {CHUNKS} chunks every {CHUNK_SECONDS * 1000:.0f} ms"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="web-latency-") as directory:
        floor = in_process(runs, embedded=False)
        rows += rows_for("Chatbot.stream in process", fake, floor)
        with dev_server(Path(directory), with_page=False) as stock:
            rows += rows_for(
                "SDK runs.stream, stock langgraph dev",
                fake,
                asyncio.run(sdk(stock.url, "bench", runs)),
            )
        with dev_server(Path(directory), with_page=True) as server:
            rows += rows_for(
                "SDK runs.stream, with the web app",
                fake,
                asyncio.run(sdk(server.url, "bench", runs)),
            )
            page, cpu, render = page_samples(server.url, "bench", runs)
            rows += rows_for(
                "web page in chromium",
                fake,
                page,
                note="goal: first token within 0.15 s of in process",
            )
            rows.append(
                Row(
                    BENCH,
                    "web page: main-thread CPU per streamed token",
                    "ms",
                    cpu,
                    note="agent-chat-ui: ~24 ms per DOM update (issue 16)",
                )
            )
            rows.append(Row(BENCH, "web page: Markdown rendering per streamed token", "ms", render))
            if not skip_embedded:
                embedded_runs = max(2, runs // 2)
                model = "embedded model, 32-token replies"
                rows += rows_for(
                    "SDK runs.stream, with the web app",
                    model,
                    asyncio.run(sdk(server.url, "chatbot", embedded_runs)),
                )
                rows += rows_for(
                    "web page in chromium",
                    model,
                    page_samples(server.url, "chatbot", embedded_runs)[0],
                )
        if not skip_embedded:
            rows += rows_for(
                "Chatbot.stream in process",
                "embedded model, 32-token replies",
                in_process(max(2, runs // 2), embedded=True),
            )
    return rows


def run(quick: bool = False) -> list[Row]:
    """Entry point for `python -m bench.run`."""
    return measure(runs=2 if quick else 10, skip_embedded=False)


def main() -> None:
    """Measure and print a table."""
    from bench.common import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="replies per path (after a warm-up)")
    parser.add_argument("--skip-embedded", action="store_true", help="fake model only")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    os.environ.setdefault("AGENT_HOME", tempfile.mkdtemp(prefix="agent-bench-home-"))
    rows = measure(args.runs, args.skip_embedded)
    print(table(rows))
    if args.json:
        payload = [{**asdict(row), **row.summary()} for row in rows]
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
