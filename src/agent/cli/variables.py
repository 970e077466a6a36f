"""Persona variables from the command line: `--var KEY=VALUE` and `/persona NAME KEY=VALUE`."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agent.personas import get_persona

# LangChain and LangGraph load inside the functions that use them, so `agent -h` starts fast.
if TYPE_CHECKING:
    from agent.chatbot import Chatbot

EXAMPLE = "user_name=Ada"


def parse_assignment(text: str) -> tuple[str, str]:
    """One KEY=VALUE word as (key, value); the value may be empty or hold more '=' signs.

    Raises:
        ValueError: Without '=' or without a key, naming the word.
    """
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise ValueError(f"{text!r} is not KEY=VALUE (for example {EXAMPLE}).")
    return key.strip(), value


def parse_assignments(words: Iterable[str]) -> dict[str, str]:
    """KEY=VALUE words as a mapping (a key given twice keeps its last value)."""
    return dict(parse_assignment(word) for word in words)


def parse_persona_args(arg: str) -> tuple[str | None, dict[str, str]]:
    """The arguments of `/persona`: an optional NAME, then KEY=VALUE words.

    Values with spaces are quoted as in a shell: `/persona pirate name="Anne Bonny"`.

    Raises:
        ValueError: For an unclosed quote or a word that is not KEY=VALUE.
    """
    try:
        words = shlex.split(arg)
    except ValueError as error:  # shlex says "No closing quotation"
        raise ValueError(f"{error} in {arg!r}.") from error
    name = words.pop(0) if words and "=" not in words[0] else None
    return name, parse_assignments(words)


def current_vars(bot: Chatbot) -> dict[str, Any]:
    """The variable values the bot's next turn uses: the thread's, then those set since."""
    saved = bot.graph.get_state(bot.config).values.get("persona_vars", {})
    return {**saved, **bot.context().persona_vars}


def carried_vars(bot: Chatbot, persona: str) -> dict[str, Any]:
    """The bot's variable values that `persona` declares too (user_name carries over)."""
    declared = set(get_persona(persona).declared_variables)
    return {name: value for name, value in current_vars(bot).items() if name in declared}


def describe_vars(values: dict[str, Any]) -> str:
    """Variable values for a status line: ' (name=Anne, language=French)' or ''."""
    if not values:
        return ""
    return " (" + ", ".join(f"{name}={value}" for name, value in sorted(values.items())) + ")"
