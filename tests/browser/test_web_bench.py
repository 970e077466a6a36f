"""Smoke test of the web latency bench (`make bench`), so it cannot rot between real runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser


def test_web_latency_bench_measures_every_path(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    command = [sys.executable, "-m", "bench.web_latency", "--runs", "1", "--skip-embedded"]

    done = subprocess.run(
        [*command, "--json", str(out)], cwd=REPO, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text(encoding="utf-8"))
    names = [row["name"] for row in rows]
    for path in ("in process", "stock langgraph dev", "with the web app", "web page in chromium"):
        assert any(path in name for name in names), path
    for row in rows:
        assert row["samples"] and all(math.isfinite(x) and x > 0 for x in row["samples"]), row
    by_name = {row["name"]: row["median"] for row in rows}
    for name, first in by_name.items():
        if "first token" in name:
            assert first <= by_name[name.replace("first token", "end of reply")]
