"""The in-process llama.cpp server (xllamacpp), one per process, and served ones by URL.

One server per process (`shared_server()`), started by the first model call or token count,
bound to 127.0.0.1 on a free port behind a random per-process API key, stopped at exit, sized
by the operator's settings only (see `settings`).
"""

from __future__ import annotations

import atexit
import errno
import socket
import threading
from functools import lru_cache
from typing import Any

from agent.errors import EmbeddedModelError
from agent.models.llamacpp.endpoint import LlamaCppEndpoint
from agent.models.llamacpp.settings import ServerSettings


def port_in_use(host: str, port: int) -> bool:
    """Tell whether a fixed port is taken by a listener (so the error can say so).

    SO_REUSEADDR as the server itself binds: connections a crashed server left in TIME_WAIT
    must not make its port look taken for a minute.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


class EmbeddedServer:
    """A running in-process llama.cpp server; keep a reference or it stops."""

    def __init__(self, settings: ServerSettings) -> None:
        import xllamacpp  # type: ignore[import-untyped]

        self.settings = settings
        if settings.port and port_in_use(settings.host, settings.port):
            raise EmbeddedModelError(
                f"Port {settings.host}:{settings.port} is already in use, so the embedded model "
                f"({settings.model_path}) cannot listen there. Pick another --port, or 0 for a "
                "free one."
            )
        params = xllamacpp.CommonParams()
        params.model.path = str(settings.model_path)
        params.hostnames = [settings.host]
        params.port = settings.port
        params.n_parallel = settings.slots
        params.n_ctx = settings.slots * settings.context_per_slot
        params.cpuparams.n_threads = settings.threads
        params.cpuparams_batch.n_threads = settings.threads
        params.api_keys = [settings.api_key] if settings.api_key else []
        params.verbosity = -1  # llama.cpp logs every request otherwise
        params.warmup = False
        try:
            self._server: Any = xllamacpp.Server(params)
        except Exception as error:  # xllamacpp raises a generic RuntimeError
            raise EmbeddedModelError(
                f"The embedded llama.cpp server could not start with {settings.model_path} on "
                f"{settings.host}:{settings.port or '<free port>'} ({error}). Check that the file "
                "is a GGUF model llama.cpp supports and that the host/port can be bound, or set "
                "OPENAI_BASE_URL to use another server."
            ) from error
        root_url = str(self._server.listening_address).rstrip("/")
        self.endpoint = LlamaCppEndpoint(
            root_url,
            settings.api_key,
            label=f"embedded llama.cpp ({settings.model_path.name})",
            model_path=settings.model_path,
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (ends in /v1)."""
        return self.endpoint.base_url

    @property
    def running(self) -> bool:
        """Whether the native server is still held (and so still serving)."""
        return self._server is not None

    def stop(self) -> None:
        """Stop serving: the native server shuts down when its object is released."""
        self.endpoint.close()
        self._server = None


# The process's one in-process server: a process-wide resource by nature (one loaded model
# shared by every conversation), started lazily and stopped at exit.
_lock = threading.Lock()
_server: EmbeddedServer | None = None


def shared_server() -> EmbeddedServer:
    """The process's embedded server, started on first use with the operator's settings."""
    global _server
    with _lock:
        if _server is None:
            _server = EmbeddedServer(ServerSettings.from_env())
            atexit.register(stop_shared_server)
        return _server


def running_server() -> EmbeddedServer | None:
    """The process's embedded server if it has been started (never starts it)."""
    return _server


def stop_shared_server() -> None:
    """Stop the process's embedded server if it is running; the next use starts a fresh one."""
    global _server
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None
            atexit.unregister(stop_shared_server)


@lru_cache(maxsize=8)
def served_endpoint(base_url: str, api_key: str) -> LlamaCppEndpoint:
    """An already-running embedded server (`agent model serve`) reached through its URL."""
    root = base_url.rstrip("/").removesuffix("/v1")
    return LlamaCppEndpoint(root, api_key, label=f"embedded llama.cpp server at {base_url}")
