"""What the LangGraph server adds to a turn: per-run latency and time to first token via the SDK.

Compares, with the same scripted fake model, the graph run in process against the graph run
through a server (a `langgraph dev` this script starts, or any --url / --server), and the
embedded model through the same server. Prints min/median/max and writes JSON.

    .venv/bin/python bench/server_overhead.py --runs 20
    .venv/bin/python bench/server_overhead.py --server replica=http://127.0.0.1:2025 --graph fake
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402

from agent.graph import build_graph  # noqa: E402
from bench.common import Row  # noqa: E402
from tests.fakes import FakeChat  # noqa: E402
from tests.integration.fake_server_graph import describe_input  # noqa: E402

Sample = tuple[float, float]  # (time to first token, total), seconds


def summary(values: list[float]) -> dict[str, Any]:
    """Min/median/max plus the raw samples."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "samples": values,
    }


def in_process_samples(runs: int) -> list[Sample]:
    """The same graph and fake model, no server: the floor a server adds to."""
    graph = build_graph(
        chat_model=FakeChat(reply=describe_input, chunk_size=8), checkpointer=InMemorySaver()
    )
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    samples = []
    for turn in range(runs):
        start, first = time.perf_counter(), None
        message = {"messages": [{"role": "user", "content": f"turn {turn}"}]}
        for _chunk, meta in graph.stream(message, config, stream_mode="messages"):
            if first is None and meta.get("langgraph_node") == "call_model":
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        samples.append((first if first is not None else total, total))
    return samples


async def server_samples(url: str, graph: str, runs: int) -> list[Sample]:
    """Sequential turns on one thread through the SDK, timing first token and the whole run."""
    samples = []
    async with get_client(url=url) as client:
        thread = await client.threads.create()
        for turn in range(runs):
            start, first = time.perf_counter(), None
            async for part in client.runs.stream(
                thread["thread_id"],
                graph,
                input={"messages": [{"role": "user", "content": f"Say hi. ({turn})"}]},
                stream_mode=["messages-tuple", "values"],
            ):
                if part.event == "error":
                    raise RuntimeError(f"run failed on {url}: {part.data}")
                if first is None and part.event == "messages" and part.data[0].get("content"):
                    first = time.perf_counter() - start
            total = time.perf_counter() - start
            samples.append((first if first is not None else total, total))
    return samples


def result(name: str, samples: list[Sample], **meta: Any) -> dict[str, Any]:
    """One benchmark row."""
    return {
        "name": name,
        **meta,
        "ttft_s": summary([s[0] for s in samples]),
        "total_s": summary([s[1] for s in samples]),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """A fixed-width table in milliseconds."""
    print(f"{'name':<22} {'n':>3}  {'ttft min/median/max ms':>26}  {'total min/median/max ms':>26}")
    for row in rows:
        cells = []
        for key in ("ttft_s", "total_s"):
            s = row[key]
            cells.append(f"{s['min'] * 1e3:8.1f}/{s['median'] * 1e3:8.1f}/{s['max'] * 1e3:8.1f}")
        count = len(row["total_s"]["samples"])
        print(f"{row['name']:<22} {count:>3}  {cells[0]:>26}  {cells[1]:>26}")


async def measure(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    """All rows: in process, the server with the fake, the embedded model, extra servers."""
    rows = [result("in-process", in_process_samples(args.runs), graph="fake")]
    rows.append(result("server", await server_samples(url, "fake", args.runs), graph="fake"))
    if not args.skip_embedded:
        embedded = await server_samples(url, "chatbot", max(1, args.runs // 2))
        rows.append(result("server-embedded", embedded, graph="chatbot"))
    for spec in args.server:
        name, _, extra_url = spec.partition("=")
        samples = await server_samples(extra_url, args.graph, args.runs)
        rows.append(result(name, samples, graph=args.graph, url=extra_url))
    return rows


def with_own_server(
    jobs: int, body: Callable[[str], Awaitable[list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """Start a `langgraph dev` (fake + embedded graphs) for the measurement, then stop it."""
    from tests.integration.server_harness import start_dev_server

    with tempfile.TemporaryDirectory(prefix="server-overhead-") as directory:
        server = start_dev_server(Path(directory), env={"AGENT_MAX_REPLY_TOKENS": "16"}, jobs=jobs)
        try:
            return asyncio.run(body(server.url))
        finally:
            server.stop()


def run(quick: bool = False) -> list[Row]:
    """Entry point for `python -m bench.run`: own dev server, fake and embedded model."""
    args = argparse.Namespace(runs=3 if quick else 20, skip_embedded=False, server=[], graph="fake")
    results = with_own_server(4, lambda url: measure(args, url))
    rows: list[Row] = []
    for result_row in results:
        label = f"{result_row['name']} ({result_row['graph']} model)"
        rows.append(
            Row(
                "7 through the server",
                f"{label}: time to first token",
                "s",
                result_row["ttft_s"]["samples"],
            )
        )
        rows.append(
            Row(
                "7 through the server", f"{label}: whole run", "s", result_row["total_s"]["samples"]
            )
        )
    return rows


def main() -> None:
    """Parse arguments, measure, print, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="turns per configuration")
    parser.add_argument("--url", help="use this running server (graphs `fake` and `chatbot`)")
    parser.add_argument("--jobs", type=int, default=4, help="--n-jobs-per-worker of own server")
    parser.add_argument("--skip-embedded", action="store_true", help="fake model only")
    parser.add_argument(
        "--server", action="append", default=[], help="NAME=URL: also measure this server"
    )
    parser.add_argument("--graph", default="fake", help="graph id on --server servers")
    parser.add_argument("--out", type=Path, help="JSON file (default: bench/results/...)")
    args = parser.parse_args()

    if args.url:
        rows = asyncio.run(measure(args, args.url))
    else:
        rows = with_own_server(args.jobs, lambda url: measure(args, url))
    print_table(rows)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "bench" / "results" / f"server_overhead-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"when": stamp, "runs": args.runs, "python": platform.python_version()}
    meta |= {"cpus": os.cpu_count(), "url": args.url or "own langgraph dev"}
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
