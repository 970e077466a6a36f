"""Smoke test of `make bench` at tiny sizes, so the suite cannot rot between real runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import common, run

pytestmark = pytest.mark.integration


def test_bench_runner_measures_the_embedded_model_and_cold_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    status = run.main(["--quick", "--only", "embedded_model", "cold_start", "--output", "smoke"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    payload = json.loads((tmp_path / "smoke.json").read_text())
    assert payload["machine"]["cores"] >= 1
    rows = {(row["bench"], row["name"]): row for row in payload["rows"]}
    benches = {bench for bench, _ in rows}
    assert {"3 ttft full window", "4 stack overhead", "5 concurrency", "6 cold start"} <= benches
    for row in rows.values():
        assert row["samples"], row
        assert all(math.isfinite(x) and x > 0 for x in row["samples"]), row
    assert "| 4 stack overhead | Chatbot.stream time to first token |" in printed
    assert (
        "ratio"
        in rows[("3 ttft full window", "block eviction (max_turns=2, low_water=0.6)")]["goal"]
    )


def test_the_runaway_reply_bench_compares_both_arms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    status = run.main(["--quick", "--only", "reply_loops", "--output", "smoke"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    rows = {row["name"]: row for row in json.loads((tmp_path / "smoke.json").read_text())["rows"]}
    for arm in ("before (no cap, no repetition controls)", "after (defaults)"):
        lengths = rows[f"{arm}: reply length"]["samples"]
        assert len(lengths) == 2 and all(0 < tokens <= 16 for tokens in lengths)  # the cap
        assert len(rows[f"{arm}: time per reply"]["samples"]) == 2
    assert any(name.startswith("generation with") for name in rows)
