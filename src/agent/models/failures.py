"""Turn client-library failures of a model call into the typed errors of `agent.errors`.

Every provider client is covered: LangChain's own typed model errors (`langchain_core.exceptions`,
raised by the OpenAI, Anthropic and Gemini integrations), the SDKs' status errors (openai,
anthropic, ollama, google-genai), error events inside a stream, and transport failures.
Optional SDKs are looked up in `sys.modules` only: one that was never imported raised nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from langchain_core import exceptions as core
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
from agent.models.providers import describe_provider_model, provider_of

Advice = Mapping[type[ModelError], str]

# How servers word "the prompt is too long": OpenAI, llama.cpp, vLLM, Ollama, Anthropic, Gemini.
OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "exceed_context_size",
    "exceeds the available context size",
    "maximum context length",
    "context window",
    "prompt is too long",
    "exceeds the maximum number of tokens",
    "exceeds the context length",
)

# Transport failures (httpx or its fork httpx2) that mean the reply's body stopped coming.
DROPPED_MID_REPLY = frozenset({"RemoteProtocolError", "ReadError", "ReadTimeout"})

# (module, class) of each client's "the server answered with an error status" exception.
STATUS_ERRORS = (
    ("openai", "APIStatusError"),
    ("anthropic", "APIStatusError"),
    ("ollama", "ResponseError"),
    ("google.genai.errors", "APIError"),
)
# ... and of "the request never got an answer" (refused, DNS, timeout, dropped).
TRANSPORT_ERRORS = (
    ("openai", "APIConnectionError"),
    ("anthropic", "APIConnectionError"),
    ("httpx", "TransportError"),
    ("httpx2", "TransportError"),
)
# ... and of an error event inside a stream that started fine (no HTTP status of its own).
STREAM_ERRORS = (("openai", "APIError"), ("anthropic", "APIError"))

# LangChain's provider-neutral error classes (raised by most integrations) -> ours.
CORE_ERRORS: tuple[tuple[type[Exception], type[ModelError]], ...] = (
    (core.ModelAuthenticationError, ModelAuthError),
    (core.ModelPermissionDeniedError, ModelAuthError),
    (core.ModelNotFoundError, ModelNotFoundError),
    (core.ModelRateLimitError, ModelRateLimitError),
    (core.ModelAPIError, ModelServerError),
    (core.ModelInvalidRequestError, ModelRequestError),
)

# Error types named inside a stream's error event (Anthropic, OpenAI) -> ours.
STREAM_ERROR_TYPES: tuple[tuple[str, type[ModelError]], ...] = (
    ("rate_limit", ModelRateLimitError),
    ("authentication", ModelAuthError),
    ("permission", ModelAuthError),
    ("not_found", ModelNotFoundError),
)


def _loaded(pairs: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    """The exception classes among `pairs` whose module is imported (others raised nothing)."""
    classes: list[type[BaseException]] = []
    for module_name, class_name in pairs:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            classes.append(cls)
    return tuple(classes)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a wrapped transport failure (e.g. behind APIConnectionError)."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


def _compatible_server_url(model: BaseChatModel) -> str | None:
    """The base URL an OpenAI-protocol client was built with: an OpenAI-compatible server.

    None for OpenAI itself (`openai:` names, a bare name with OPENAI_API_KEY): its client takes
    OPENAI_BASE_URL from the environment, if set, and is described as the OpenAI provider.
    """
    base_url = getattr(model, "openai_api_base", None)
    return base_url if isinstance(base_url, str) and base_url else None


def describe_model(model: BaseChatModel) -> str:
    """Name the backend a chat model talks to, for error messages."""
    label = getattr(model, "backend_label", None)
    if isinstance(label, str):
        return label
    if (base_url := _compatible_server_url(model)) is not None:
        return f"OpenAI-compatible server at {base_url}"
    provider = provider_of(model)
    if provider is not None:
        return describe_provider_model(model, provider)
    return f"chat model {type(model).__name__}"


def advice_for(model: BaseChatModel) -> Advice:
    """What to do per failure, in the words of the model's provider (its key and URL variables)."""
    if _compatible_server_url(model) is not None:  # the defaults speak of compatible servers
        return {}
    provider = provider_of(model)
    return provider.advice if provider is not None else {}


def server_words(error: BaseException) -> str:
    """The error text the server sent (JSON message, SDK field, or the exception's text)."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    for attribute in ("message", "error"):  # google-genai's .message, ollama's .error
        value = getattr(error, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(error)


def http_status(error: BaseException) -> int | None:
    """The HTTP error status a client exception carries (None: no status, or not an error)."""
    if not isinstance(error, _loaded(STATUS_ERRORS)):
        return None
    for attribute in ("status_code", "code"):
        value = getattr(error, attribute, None)
        if isinstance(value, int) and 400 <= value <= 599:
            return value
    return None


def is_context_overflow(error: BaseException) -> bool:
    """Tell whether a failure means the prompt did not fit the model's context."""
    if isinstance(error, core.ContextOverflowError):
        return True
    text = f"{error} {server_words(error)} {getattr(error, 'body', '')}".lower()
    return any(marker in text for marker in OVERFLOW_MARKERS)


def _is_transport_failure(error: BaseException) -> bool:
    """Tell whether the request never got (all of) an answer: refused, timed out, dropped."""
    transport = (core.ModelConnectionError, core.ModelTimeoutError)
    return isinstance(error, transport + _loaded(TRANSPORT_ERRORS))


def classify(error: BaseException) -> type[ModelError] | None:
    """Which typed error a model-call failure is (None: not a model-call failure)."""
    if _is_transport_failure(error):
        dropped = type(_root_cause(error)).__name__ in DROPPED_MID_REPLY
        return ModelConnectionLostError if dropped else ModelUnreachableError
    status = http_status(error)
    is_model_failure = status is not None or isinstance(
        error, (core.ModelError, *_loaded(STATUS_ERRORS), *_loaded(STREAM_ERRORS))
    )
    if not is_model_failure:
        return None
    if is_context_overflow(error):
        return ContextOverflowError
    for core_class, typed in CORE_ERRORS:
        if isinstance(error, core_class):
            return typed
    if status is not None:
        return _by_status(status)
    return _by_stream_error(error)


def _by_status(status: int) -> type[ModelError]:
    """Map an HTTP error status to its typed error."""
    if status in (401, 403):
        return ModelAuthError
    if status == 404:
        return ModelNotFoundError
    if status == 429:
        return ModelRateLimitError
    if status >= 500:
        return ModelServerError
    return ModelRequestError


def _by_stream_error(error: BaseException) -> type[ModelError]:
    """Map an error event inside a stream (no HTTP status) by the type it names."""
    text = f"{getattr(error, 'body', '')} {server_words(error)}".lower()
    return next((typed for word, typed in STREAM_ERROR_TYPES if word in text), ModelServerError)


def translate(
    error: BaseException, backend: str, advice: Advice | None = None
) -> ModelError | None:
    """The typed error for a model-call failure, or None if it is not a model-call failure.

    Args:
        error: What the client library raised.
        backend: Names where the call went (see `describe_model`).
        advice: Per error type, what to do instead of the default advice (a provider's words).

    Returns:
        The typed error (`error` itself if it already is one), or None.
    """
    if isinstance(error, ModelError):
        return error
    typed = classify(error)
    if typed is None:
        return None
    words = server_words(_root_cause(error) if _is_transport_failure(error) else error)
    if typed is ModelRequestError and (status := http_status(error)) is not None:
        words = f"HTTP {status}: {words}"
    return typed(backend, words, advice=(advice or {}).get(typed))


@contextmanager
def model_errors(backend: str, advice: Advice | None = None) -> Iterator[None]:
    """Re-raise failures of the model call inside as typed `ModelError`s naming `backend`."""
    try:
        yield
    except Exception as error:
        typed = translate(error, backend, advice)
        if typed is None or typed is error:
            raise
        raise typed from error
