"""`make bench`: run every benchmark, print one table, write the same figures as JSON.

Usage: python -m bench.run [--quick] [--only NAME ...]
Each bench module exposes `run(quick: bool) -> list[Row]`; `--quick` is the smoke-test size.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import traceback

from bench.common import Row, machine, table, write_results

BENCHES = [
    "memory_growth",
    "memory_concurrency",
    "embedded_model",
    "reply_loops",
    "cold_start",
    "server_overhead",
    "measurement_model",
    "memory_recall",
    "web_latency",
    "embeddings",
]


def run_bench(name: str, quick: bool) -> list[Row]:
    """Run one bench module; a failure becomes a row that says why, not a crash of the suite."""
    try:
        module = importlib.import_module(f"bench.{name}")
        rows: list[Row] = module.run(quick=quick)
        return rows
    except Exception as error:  # report and continue: one broken bench must not hide the rest
        traceback.print_exc()
        return [Row(name, "FAILED", "s", [], note=f"{type(error).__name__}: {error}")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", nargs="*", choices=BENCHES, help="run only these benches")
    parser.add_argument("--output", default=None, help="JSON name under bench/results/")
    args = parser.parse_args(argv)
    os.environ.setdefault("AGENT_HOME", tempfile.mkdtemp(prefix="agent-bench-home-"))
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENT_BASE_URL", "AGENT_BACKEND"):
        os.environ.pop(variable, None)
    rows: list[Row] = []
    for name in args.only or BENCHES:
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows += run_bench(name, args.quick)
    info = machine()
    print(
        f"\nMachine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, "
        f"Python {info['python']}, commit {info['commit']}, {info['date']}\n"
    )
    print(table(rows))
    path = write_results(rows, args.output or ("quick" if args.quick else "latest"))
    print(f"\nJSON: {path}")
    return 1 if any(row.name == "FAILED" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
