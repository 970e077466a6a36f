"""The HTTP client of a running llama.cpp server: what the model is, counting, chat models.

`LlamaCppEndpoint` talks to one server (in-process or `agent model serve` at a URL). Chat models
are cached by the backend per endpoint, so a restarted server never gets a stale one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import Field

from agent.models.llamacpp.gguf import GGUFFormatError, special_tokens
from agent.models.llamacpp.sampling import Repetition
from agent.models.llamacpp.settings import DEFAULT_CONTEXT_PER_SLOT
from agent.models.llamacpp.special import neutralize, neutralize_payload

# ChatML-style framing per message: start token, role, newline, end token, newline.
MESSAGE_OVERHEAD_TOKENS = 5
SERVED_RETRIES = 2  # a served model is another process: retry transient failures like remotes


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
    """A llama.cpp HTTP server we talk to: its props, `/tokenize` counts and chat models."""

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
        self._props: dict[str, Any] | None = None
        self._special: tuple[str, ...] | None = None
        self.count_text = lru_cache(maxsize=16384)(self._count_text)

    # --- what the model is ---------------------------------------------------------------

    def props(self) -> dict[str, Any]:
        """The server's /props (model path, chat template and its caps, slot context size)."""
        response = self._http.get("/props")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def _cached_props(self) -> dict[str, Any]:
        """/props read once: what a running server serves does not change."""
        with self._lock:
            if self._props is None:
                self._props = self.props()
            return self._props

    def slot_context(self) -> int:
        """Tokens one request may use on this server (its per-slot context size)."""
        settings = self._cached_props().get("default_generation_settings", {})
        return int(settings.get("n_ctx") or DEFAULT_CONTEXT_PER_SLOT)

    def model_file(self) -> Path:
        """The GGUF file the server serves (as the server reports it, for a served model)."""
        if self._model_path is not None:
            return self._model_path
        return Path(str(self._cached_props().get("model_path", "")))

    def supports_tool_calls(self) -> bool:
        """Whether the model's chat template can render tools (llama.cpp drops them otherwise)."""
        caps = self._cached_props().get("chat_template_caps", {})
        return bool(caps.get("supports_tool_calls"))

    def special_tokens(self) -> tuple[str, ...]:
        """The model's special-token texts, read from its GGUF (bos/eos if the file is remote)."""
        with self._lock:
            if self._special is not None:
                return self._special
        found = self._read_special_tokens()
        with self._lock:
            self._special = found
            return found

    def _read_special_tokens(self) -> tuple[str, ...]:
        """Read the tokens from the GGUF file; fall back to /props bos/eos if we cannot."""
        path = self.model_file()
        if path.is_file():
            try:
                return tuple(special_tokens(path))
            except (GGUFFormatError, OSError):
                pass
        props = self._cached_props()
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
        self, model: str, temperature: float, reply_cap: int, repetition: Repetition
    ) -> EmbeddedChatOpenAI:
        """A streaming ChatOpenAI for this server, with the role guard and repetition controls."""
        return EmbeddedChatOpenAI(
            model=model,
            temperature=temperature,
            max_completion_tokens=reply_cap,
            extra_body=repetition.request_fields(),
            base_url=self.base_url,
            api_key=self.api_key or "not-needed",  # type: ignore[arg-type]
            stream_usage=True,
            max_retries=0 if self._model_path else SERVED_RETRIES,
            special_tokens=self.special_tokens(),
            backend_label=self.label,
        )

    def close(self) -> None:
        """Release the HTTP client and forget the cached counts."""
        self.count_text.cache_clear()
        self._http.close()
