"""Turn client-library failures of a model call into the typed errors of `agent.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
from langchain_core.exceptions import ContextOverflowError as CoreContextOverflowError
from langchain_core.language_models import BaseChatModel

from agent.errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelConnectionLostError,
    ModelError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelRequestError,
    ModelServerError,
    ModelUnreachableError,
)

# How servers word "the prompt is too long": OpenAI, llama.cpp, vLLM, Ollama.
OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "exceed_context_size",
    "exceeds the available context size",
    "maximum context length",
    "context window",
    "prompt is too long",
)


# Transport failures (httpx or its fork httpx2) that mean the reply's body stopped coming.
DROPPED_MID_REPLY = frozenset({"RemoteProtocolError", "ReadError", "ReadTimeout"})


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a wrapped transport failure (e.g. behind APIConnectionError)."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


def describe_model(model: BaseChatModel) -> str:
    """Name the backend a chat model talks to, for error messages."""
    label = getattr(model, "backend_label", None)
    if isinstance(label, str):
        return label
    base_url = getattr(model, "openai_api_base", None)
    if base_url:
        return f"OpenAI-compatible server at {base_url}"
    if type(model).__name__ == "ChatOpenAI":
        return "OpenAI"
    return f"chat model {type(model).__name__}"


def _server_words(error: openai.APIStatusError) -> str:
    """The error text the server sent (JSON message or raw body)."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(error.message)


def is_context_overflow(error: BaseException) -> bool:
    """Tell whether a failure means the prompt did not fit the model's context."""
    if isinstance(error, CoreContextOverflowError):
        return True
    text = str(error).lower()
    if isinstance(error, openai.APIStatusError):
        text += " " + _server_words(error).lower() + " " + str(error.body).lower()
    return any(marker in text for marker in OVERFLOW_MARKERS)


def translate(error: BaseException, backend: str) -> ModelError | None:
    """The typed error for a model-call failure, or None if it is not a model-call failure."""
    if isinstance(error, ModelError):
        return error
    if isinstance(error, openai.APIStatusError):
        return _status_error(error, backend)
    if isinstance(error, openai.APIConnectionError | httpx.TransportError):
        cause = _root_cause(error)
        if type(cause).__name__ in DROPPED_MID_REPLY:
            return ModelConnectionLostError(backend, str(cause))
        return ModelUnreachableError(backend, str(cause))
    if isinstance(error, CoreContextOverflowError):
        return ContextOverflowError(backend, str(error))
    if isinstance(error, openai.APIError):  # an error event inside the stream
        if is_context_overflow(error):
            return ContextOverflowError(backend, str(error))
        return ModelServerError(backend, str(error))
    return None


def _status_error(error: openai.APIStatusError, backend: str) -> ModelError:
    """Map an HTTP error status to its typed error."""
    words, status = _server_words(error), error.status_code
    if is_context_overflow(error):
        return ContextOverflowError(backend, words)
    if status in (401, 403):
        return ModelAuthError(backend, words)
    if status == 404:
        return ModelNotFoundError(backend, words)
    if status == 429:
        return ModelRateLimitError(backend, words)
    if status >= 500:
        return ModelServerError(backend, words)
    return ModelRequestError(backend, f"HTTP {status}: {words}")


@contextmanager
def model_errors(backend: str) -> Iterator[None]:
    """Re-raise failures of the model call inside as typed `ModelError`s naming `backend`."""
    try:
        yield
    except Exception as error:
        typed = translate(error, backend)
        if typed is None or typed is error:
            raise
        raise typed from error
