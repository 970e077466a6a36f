"""Shared pieces of the benchmark suite: rows of repeated measurements, a table and JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass
class Row:
    """One measured figure: its samples, and the alternative it is compared with."""

    bench: str
    name: str
    unit: str
    samples: list[float]
    goal: str = ""
    note: str = ""
    extra: dict[str, float | str] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
        return {"min": min(self.samples), "median": self.median, "max": max(self.samples)}


def ratio(numerator: Row, denominator: Row) -> float:
    """Median over median: the figure a goal is stated in."""
    return numerator.median / denominator.median if denominator.median else float("nan")


def machine() -> dict[str, str | int]:
    """What the figures were measured on."""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "system": platform.platform(),
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def format_value(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "-"
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    if unit in ("s",):
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.1f} {unit}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table of min / median / max per row, with its goal and note."""
    lines = [
        "| bench | measurement | min | median | max | n | goal / comparison |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        s = row.summary()
        lines.append(
            f"| {row.bench} | {row.name} | {format_value(s['min'], row.unit)} | "
            f"{format_value(s['median'], row.unit)} | {format_value(s['max'], row.unit)} | "
            f"{len(row.samples)} | {' '.join(x for x in (row.goal, row.note) if x)} |"
        )
    return "\n".join(lines)


def write_results(rows: Sequence[Row], name: str = "latest") -> Path:
    """Write the rows and the machine description as JSON under bench/results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "machine": machine(),
        "rows": [{**asdict(row), **row.summary()} for row in rows],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
