"""Typed errors: every failure a user can cause or meet has its own class and a clear message."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches
from pathlib import Path


class AgentError(Exception):
    """Base class so callers can catch everything this package raises on purpose."""


class SettingError(AgentError, ValueError):
    """Raised for a setting that cannot be used; names the setting (or variable) and the value."""

    def __init__(self, name: str, value: object, problem: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}={value!r} {problem}.")


class UnknownSettingError(AgentError, TypeError, ValueError):
    """Raised for a setting name that does not exist (a typo), naming the closest known ones.

    A TypeError like any unexpected keyword argument, and a ValueError so the LangGraph server
    shows its message to the client instead of "An internal error occurred".
    """

    def __init__(self, unknown: Iterable[str], known: Iterable[str]) -> None:
        self.unknown = sorted(unknown)
        self.known = sorted(known)
        hints = [with_suggestion(name, self.known) for name in self.unknown]
        super().__init__(
            f"Unknown setting(s) {', '.join(hints)}. Known settings: {', '.join(self.known)}."
        )


def with_suggestion(name: str, known: Iterable[str]) -> str:
    """A quoted name, plus the closest known name when there is one (typos are common)."""
    close = get_close_matches(name, list(known), n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


class EmptyMessageError(AgentError, ValueError):
    """Raised for an empty or whitespace-only message, before anything is stored."""

    def __init__(self) -> None:
        super().__init__("Message is empty: type something for the assistant to answer.")


class InvalidTextError(AgentError, ValueError):
    """Raised for message text that is not Unicode text (a lone surrogate), before it is stored."""

    def __init__(self, character: str, position: int) -> None:
        self.character = character
        self.position = position
        super().__init__(
            f"Message is not valid text: a lone surrogate ({character}) at character {position} "
            "has no UTF-8 form (it often comes from a file that is not UTF-8). Convert the text "
            "to UTF-8 and send it again."
        )


class UnknownPersonaError(AgentError, LookupError, ValueError):
    """Raised for a persona name that no built-in or user file defines.

    Also a ValueError: the LangGraph server shows ValueError messages to clients but hides
    other exception types behind "An internal error occurred".
    """

    def __init__(self, name: str, available: Iterable[str], note: str | None = None) -> None:
        self.name = name
        self.available = sorted(available)
        extra = f" ({note})" if note else ""
        super().__init__(
            f"Unknown persona {with_suggestion(name, self.available)}. Available personas: "
            f"{', '.join(self.available)}{extra}."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class PersonaFileError(AgentError, ValueError):
    """Raised when a user persona file cannot be used; names the file and the field.

    The message names the file, not where it lives: server clients see it. The full path is
    `path`, for the operator (logged when the file is read, shown by `agent personas list`).
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        name = Path(path).name
        super().__init__(f"Persona file {name}: {problem}")


class MissingVariableError(AgentError, KeyError, ValueError):
    """Raised when a persona template needs a variable that has neither a value nor a default."""

    def __init__(self, persona: str, variable: str) -> None:
        self.persona = persona
        self.variable = variable
        super().__init__(
            f"Persona {persona!r} needs the variable {variable!r}: pass "
            f"persona_vars={{{variable!r}: ...}} (Chatbot, Context) or --var {variable}=... "
            "(agent command)."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownVariableError(AgentError, KeyError, ValueError):
    """Raised for persona variables the persona does not use (a typo would be ignored otherwise)."""

    def __init__(self, persona: str, unknown: Iterable[str], declared: Iterable[str]) -> None:
        self.persona = persona
        self.unknown = sorted(unknown)
        self.declared = sorted(declared)
        hints = ", ".join(with_suggestion(name, self.declared) for name in self.unknown)
        uses = ", ".join(self.declared) if self.declared else "none"
        super().__init__(f"Persona {persona!r} has no variable(s) {hints}. Its variables: {uses}.")

    def __str__(self) -> str:
        return str(self.args[0])


class MessageTooLargeError(AgentError, ValueError):
    """Raised when one exchange alone exceeds the whole token budget of the window."""

    def __init__(self, tokens: int, budget: int) -> None:
        self.tokens = tokens
        self.budget = budget
        super().__init__(
            f"Message too large: the system prompt and this message need {tokens} tokens, "
            f"but the window's budget is {budget} (max_tokens). Shorten it or raise max_tokens."
        )


class NothingToContinueError(AgentError, ValueError):
    """Raised when asked to continue a reply that was complete."""

    def __init__(self) -> None:
        super().__init__(
            "Nothing to continue: the last reply was complete. Only a reply cut by the "
            "reply-token limit or stopped early can be continued."
        )


class InvalidMessageError(AgentError, ValueError):
    """Raised for graph input that the conversation cannot take (e.g. a system message)."""


class UnsupportedContentError(AgentError, ValueError):
    """Raised for message parts (images, files, audio) that the model cannot take."""

    def __init__(self, model: str, kinds: Iterable[str], accepted: Iterable[str]) -> None:
        self.model = model
        self.kinds = sorted(kinds)
        self.accepted = sorted(accepted)
        takes = "text only" if self.accepted == ["text"] else ", ".join(self.accepted)
        super().__init__(
            f"The model ({model}) takes {takes}; this message carries "
            f"{', '.join(self.kinds)} content. Send the text alone (paste the words you need "
            "from the file), or ask the operator for a model that reads such content."
        )


# --- model errors: each names the backend and says what to do --------------------------------


class MissingProviderError(AgentError, ImportError, ValueError):
    """Raised for a `provider:model` name whose LangChain integration package is not installed.

    Also a ValueError, so the LangGraph server shows its message to clients.
    """

    def __init__(self, model: str, package: str, extra: str | None) -> None:
        self.model = model
        self.package = package
        self.extra = extra
        install = f"pip install 'agent[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"Model {model!r} needs the {package} package, which is not installed: {install}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class EmbeddedModelError(AgentError, RuntimeError):
    """Raised when the embedded model cannot be found or its llama.cpp server cannot start."""


class ModelError(AgentError, RuntimeError):
    """Base class for a failed model call; `backend` names where the call went."""

    summary = "The model call failed"
    advice = "Check the model server and try again."

    def __init__(self, backend: str, detail: str = "", *, advice: str | None = None) -> None:
        self.backend = backend
        self.detail = detail
        if advice is not None:  # a provider's own words (its key variable, its URL variable)
            self.advice = advice
        super().__init__(f"{self.summary} ({backend}). {self.advice}" + self._detail())

    def _detail(self) -> str:
        """The server's own words, trimmed, for the curious."""
        detail = " ".join(self.detail.split())
        return f" Server said: {detail[:200]}" if detail else ""


class ModelUnreachableError(ModelError):
    """Raised when the model endpoint cannot be reached at all (refused, DNS, timeout)."""

    summary = "The model server cannot be reached"
    advice = (
        "Start it (see docs/models.md) or fix OPENAI_BASE_URL / AGENT_BASE_URL; unset both to use "
        "the embedded model."
    )


class ModelConnectionLostError(ModelError):
    """Raised when the connection to the model drops in the middle of a reply."""

    summary = "The connection to the model was lost mid-reply"
    advice = "The turn was not saved; send the message again."


class ModelAuthError(ModelError):
    """Raised for a rejected API key (HTTP 401/403)."""

    summary = "The model server rejected the API key"
    advice = "Set a valid OPENAI_API_KEY for this server."


class ModelRateLimitError(ModelError):
    """Raised for HTTP 429 once the retries with backoff are used up."""

    summary = "The model server is rate limiting or out of quota"
    advice = "Wait a moment and send the message again, or check the account's quota."


class ModelNotFoundError(ModelError):
    """Raised for HTTP 404: unknown model name or wrong base URL path."""

    summary = "The model server does not know this model or path"
    advice = "Set AGENT_MODEL to a model the server serves, and make sure the base URL ends in /v1."


class ContextOverflowError(ModelError):
    """Raised when the prompt does not fit the model's context window."""

    summary = "The conversation does not fit the model's context window"
    advice = (
        "Lower AGENT_MAX_TOKENS / AGENT_MAX_TURNS so the window is smaller, or give the model more "
        "context (AGENT_CONTEXT_SIZE for the embedded model)."
    )


class ModelServerError(ModelError):
    """Raised for HTTP 5xx once the retries with backoff are used up."""

    summary = "The model server failed (server error)"
    advice = "Try again later; check the server's logs if it keeps happening."


class ModelRequestError(ModelError):
    """Raised for any other rejected request (HTTP 4xx)."""

    summary = "The model server rejected the request"
    advice = "Check the model name and settings (docs/models.md)."


# --- a run's model settings the backend cannot honour: clear before anything is sent ---------


class UnsupportedModelError(AgentError, ValueError):
    """Raised when a run names a model its backend does not serve (e.g. `-m` on the embedded)."""

    def __init__(self, backend: str, asked: str, serves: str, how: str) -> None:
        self.backend = backend
        self.asked = asked
        super().__init__(f"The {backend} serves {serves}; it cannot answer as {asked!r}. {how}")


class ReplyCapError(AgentError, ValueError):
    """Raised for a reply cap that would leave the window too little of the model's context."""

    def __init__(self, cap: int, context: int, most: int, backend: str) -> None:
        self.cap = cap
        self.most = most
        super().__init__(
            f"max_reply_tokens={cap} does not fit the {backend}: one conversation has {context} "
            f"tokens of context and the system prompt and history keep at least {context - most}"
            f". Use at most {most}, or give each conversation more context (AGENT_CONTEXT_SIZE)."
        )


class ToolsUnsupportedError(AgentError, ValueError):
    """Raised when tools are offered to a model that cannot call them (they would be dropped)."""

    TOOL_MODELS = (
        "Use a model that can call tools: any OpenAI model (OPENAI_API_KEY), an Anthropic or "
        "Gemini model, or an Ollama model with tool support (e.g. OPENAI_BASE_URL="
        "http://localhost:11434/v1 AGENT_MODEL=qwen2.5:1.5b), or a GGUF whose chat template "
        "supports tools (AGENT_MODEL_PATH). See docs/models.md."
    )

    def __init__(self, backend: str, why: str) -> None:
        self.backend = backend
        super().__init__(f"The {backend} cannot call tools ({why}). {self.TOOL_MODELS}")
