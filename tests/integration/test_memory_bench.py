"""Smoke test of bench/memory_growth.py at tiny sizes: it runs, and its figures make sense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import common, memory_growth
from tests.integration.test_memory_support import postgres_admin

pytestmark = pytest.mark.integration


def test_memory_growth_bench_runs_at_tiny_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    with_postgres = postgres_admin()[0] is not None
    argv = ["--marks", "2", "6", "12", "--output", "smoke"]
    assert memory_growth.main(argv if with_postgres else [*argv, "--no-postgres"]) == 0
    rows = {row["name"]: row for row in json.loads((tmp_path / "smoke.json").read_text())["rows"]}
    variants = ["naive (full history, SqliteSaver)", "agent (SQLite)"]
    variants += ["agent (PostgreSQL)"] if with_postgres else []
    for variant in variants:
        sizes = [rows[f"{variant}: DB size at turn {mark}"]["median"] for mark in (2, 6, 12)]
        assert 0 < sizes[0] <= sizes[2]
        assert len(rows[f"{variant}: per-turn time at turn 12"]["samples"]) == 10
        assert rows[f"{variant}: turn 12 / turn 2"]["median"] > 0
    naive = rows["naive (full history, SqliteSaver): DB size at turn 12"]["median"]
    assert rows["agent (SQLite): DB size at turn 12"]["median"] < naive


def test_memory_concurrency_bench_runs_at_tiny_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import memory_concurrency

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    with_postgres = postgres_admin()[0] is not None
    argv = ["--levels", "1", "25", "--repeats", "1", "--turns", "2", "--output", "smoke"]
    assert memory_concurrency.main(argv if with_postgres else [*argv, "--no-postgres"]) == 0
    rows = {row["name"]: row for row in json.loads((tmp_path / "smoke.json").read_text())["rows"]}
    for backend in ["SQLite", *(["PostgreSQL"] if with_postgres else [])]:
        for style in ("OS threads", "asyncio tasks"):
            assert rows[f"{backend}, 1 conversations ({style})"]["median"] > 0
            crowded = rows[f"{backend}, 25 conversations ({style})"]
            assert crowded["median"] > 0 and "of 1 conversation" in crowded["note"]
