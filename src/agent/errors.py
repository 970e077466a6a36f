"""Typed errors: every failure a user can cause or meet has its own class and a clear message."""

from __future__ import annotations

from collections.abc import Iterable


class AgentError(Exception):
    """Base class so callers can catch everything this package raises on purpose."""


class EmptyMessageError(AgentError, ValueError):
    """Raised for an empty or whitespace-only message, before anything is stored."""

    def __init__(self) -> None:
        super().__init__("Message is empty: type something for the assistant to answer.")


class UnknownPersonaError(AgentError, LookupError):
    """Raised for a persona name that no built-in or user file defines."""

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.name = name
        self.available = sorted(available)
        super().__init__(
            f"Unknown persona {name!r}. Available personas: {', '.join(self.available)}."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class PersonaFileError(AgentError, ValueError):
    """Raised when a user persona file cannot be used; names the file and the field."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"Persona file {path}: {problem}")


class MissingVariableError(AgentError, KeyError):
    """Raised when a persona template needs a variable that has neither a value nor a default."""

    def __init__(self, persona: str, variable: str) -> None:
        self.persona = persona
        self.variable = variable
        super().__init__(
            f"Persona {persona!r} needs the variable {variable!r}: "
            f"pass {variable}=... (Chatbot keyword or Context.persona_vars)."
        )

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


class InvalidMessageError(AgentError, ValueError):
    """Raised for graph input that the conversation cannot take (e.g. a system message)."""
