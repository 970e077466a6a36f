"""The RAG example's module is cheap to import: the embedding model loads on the first question."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_rag_graph_loads_no_embedding_model() -> None:
    code = (
        "import sys; from examples.rag_assistant import graph; "
        "assert 'retrieve' in graph.get_graph().nodes and graph.checkpointer is None; "
        "print(sorted(m for m in ('agent.retrieval.minilm', 'tokenizers', 'safetensors', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
