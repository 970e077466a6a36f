"""Per-run settings for the graph, with environment-variable fallbacks and validation."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_PERSONA = "assistant"


def _env(name: str) -> str | None:
    """Return a non-empty environment value, treating empty strings as unset."""
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(kw_only=True)
class Context:
    """Settings for one run: who the bot is, which model, and how big the window may grow."""

    persona: str | None = field(
        default=None,
        metadata={
            "description": "Persona name. None keeps the thread's persona "
            "(new threads: $AGENT_PERSONA, else 'assistant'). Naming one switches the thread."
        },
    )
    persona_vars: dict[str, Any] = field(
        default_factory=dict,
        metadata={"description": "Values for the persona template's variables (e.g. user_name)."},
    )
    model: str | None = field(
        default=None,
        metadata={"description": "Model name; $AGENT_MODEL, else the backend's default."},
    )
    temperature: float = field(
        default=0.7, metadata={"description": "Sampling temperature; $AGENT_TEMPERATURE."}
    )
    max_turns: int = field(
        default=20,
        metadata={
            "description": "Exchanges (user message + replies) the model sees, the current one "
            "included; $AGENT_MAX_TURNS."
        },
    )
    max_tokens: int | None = field(
        default=None,
        metadata={
            "description": "Token budget for system prompt + window (None: turns only); "
            "$AGENT_MAX_TOKENS."
        },
    )
    low_water: float = field(
        default=0.6,
        metadata={
            "description": "On overflow, evict down to this fraction of the budget so the prompt "
            "prefix stays cached for many turns; $AGENT_LOW_WATER."
        },
    )
    max_reply_tokens: int | None = field(
        default=None,
        metadata={
            "description": "Most tokens one reply may have (None: the model's limit); "
            "$AGENT_MAX_REPLY_TOKENS."
        },
    )

    def __post_init__(self) -> None:
        """Fill unset fields from the environment, then reject impossible settings."""
        defaults = {f.name: f.default for f in fields(self)}
        if self.model is None:
            self.model = _env("AGENT_MODEL")
        if self.temperature == defaults["temperature"] and _env("AGENT_TEMPERATURE"):
            self.temperature = float(os.environ["AGENT_TEMPERATURE"])
        if self.max_turns == defaults["max_turns"] and _env("AGENT_MAX_TURNS"):
            self.max_turns = int(os.environ["AGENT_MAX_TURNS"])
        if self.max_tokens is None and _env("AGENT_MAX_TOKENS"):
            self.max_tokens = int(os.environ["AGENT_MAX_TOKENS"])
        if self.low_water == defaults["low_water"] and _env("AGENT_LOW_WATER"):
            self.low_water = float(os.environ["AGENT_LOW_WATER"])
        if self.max_reply_tokens is None and _env("AGENT_MAX_REPLY_TOKENS"):
            self.max_reply_tokens = int(os.environ["AGENT_MAX_REPLY_TOKENS"])
        if self.max_reply_tokens is not None and self.max_reply_tokens < 1:
            raise ValueError(f"max_reply_tokens must be >= 1, got {self.max_reply_tokens!r}.")
        validate_window_settings(self.max_turns, self.max_tokens, self.low_water)

    @classmethod
    def coerce(cls, value: Context | dict[str, Any] | None) -> Context:
        """Accept what a run may carry (nothing, a dict from the server, or a Context)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                names, allowed = ", ".join(unknown), ", ".join(sorted(known))
                raise ValueError(f"Unknown context field(s) {names}; known: {allowed}.")
            return cls(**value)
        raise TypeError(f"Context must be a Context or a dict, not {type(value).__name__}.")


def validate_window_settings(max_turns: int, max_tokens: int | None, low_water: float) -> None:
    """Raise ValueError for a window that could never hold a conversation."""
    if not isinstance(max_turns, int) or max_turns < 1:
        raise ValueError(f"max_turns must be an integer >= 1, got {max_turns!r}.")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be a positive integer or None, got {max_tokens!r}.")
    if not 0 < low_water <= 1:
        raise ValueError(f"low_water must be in (0, 1], got {low_water!r}.")
