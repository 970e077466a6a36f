"""Per-run settings for the graph: explicit values first, then the environment, then defaults.

Each field's metadata holds its description and, for settings an operator may set for every
run, the environment variable (`env`). One loop reads them all: a field the caller named keeps
its value even when it equals the default; only fields left out are filled from the
environment. The tables in README.md, docs/ and `agent chat -h` are generated from the same
metadata (agent.settings).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from functools import cache
from typing import Any, get_args, get_type_hints

from agent.errors import SettingError, UnknownSettingError
from agent.settings import EnvSetting, Kind, parse, raw

DEFAULT_PERSONA = "assistant"


Check = Callable[[Any], str | None]


def is_int(value: Any) -> bool:
    """An int that is not a bool (True is an int to Python, not a turn count to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def name_or_none(value: Any) -> str | None:
    """Problem with a name setting (persona, model), or None."""
    ok = value is None or (isinstance(value, str) and value.strip() != "")
    return None if ok else "must be a non-empty name or None"


def variables(value: Any) -> str | None:
    """Problem with persona variables, or None."""
    ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return None if ok else "must map variable names to values"


def non_negative(value: Any) -> str | None:
    """Problem with a number that must be >= 0, or None."""
    return None if is_number(value) and value >= 0 else "must be a number >= 0"


def at_least_one(value: Any) -> str | None:
    """Problem with a count that must be an integer >= 1, or None."""
    return None if is_int(value) and value >= 1 else "must be an integer >= 1"


def yes_or_no(value: Any) -> str | None:
    """Problem with an on/off setting, or None."""
    return None if isinstance(value, bool) else "must be true or false"


def positive_or_none(value: Any) -> str | None:
    """Problem with an optional token count, or None."""
    ok = value is None or (is_int(value) and value >= 1)
    return None if ok else "must be a positive integer or None"


def fraction(value: Any) -> str | None:
    """Problem with a fraction in (0, 1], or None."""
    return None if is_number(value) and 0 < value <= 1 else "must be a number in (0, 1]"


def setting(
    default: Any,
    description: str,
    *,
    check: Check,
    env: str | None = None,
    shown: str = "",
) -> Any:
    """A Context field: default, one-line description, validity check, environment variable.

    `shown` is the default as tables print it when the value itself would mislead (None).
    """
    metadata = {
        "description": description,
        "check": check,
        "env": env,
        "shown": shown or repr(default),
    }
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(kw_only=True)
class Context:
    """Settings for one run: who the bot is, which model, and how big the window may grow.

    Pass it as `graph.invoke(..., context=Context(...))` or, from a LangGraph client, as the
    run's `context` dict. Fields you name win; the others come from the environment (the
    operator's defaults), then from the defaults below. Unknown names are an error, not
    silently ignored.

    Example:
        >>> Context(max_turns=5, temperature=0.2).max_turns
        5
    """

    persona: str | None = setting(
        None,
        "Persona name. None keeps the thread's persona (new threads: $AGENT_PERSONA, else "
        "'assistant'). Naming one switches the thread.",
        check=name_or_none,
        shown="the thread's",
    )
    persona_vars: dict[str, Any] = setting(
        {},
        "Values for the persona template's variables, e.g. {'user_name': 'Ada'}.",
        check=variables,
    )
    model: str | None = setting(
        None,
        "Model name sent to the backend, or provider:model (anthropic:, google_genai:, "
        "ollama:, openai:, ...; see docs/models.md).",
        check=name_or_none,
        env="AGENT_MODEL",
        shown="backend's default",
    )
    temperature: float = setting(
        0.7, "Sampling temperature.", check=non_negative, env="AGENT_TEMPERATURE"
    )
    max_turns: int = setting(
        20,
        "Exchanges (user message + replies) the model sees, the current one included.",
        check=at_least_one,
        env="AGENT_MAX_TURNS",
    )
    max_tokens: int | None = setting(
        None,
        "Token budget for system prompt + window. It can only shrink the backend's: on the "
        "embedded model one slot (AGENT_CONTEXT_SIZE) minus the reply's reserve; elsewhere "
        "None means turns only.",
        check=positive_or_none,
        env="AGENT_MAX_TOKENS",
        shown="backend's",
    )
    low_water: float = setting(
        0.6,
        "On overflow, evict down to this fraction of the budget, so the prompt prefix stays "
        "cached for many turns.",
        check=fraction,
        env="AGENT_LOW_WATER",
    )
    max_reply_tokens: int | None = setting(
        None,
        "Most tokens one reply may have; a reply that reaches it is marked cut. The window "
        "keeps that much room free (embedded: at most 3/4 of a slot).",
        check=positive_or_none,
        env="AGENT_MAX_REPLY_TOKENS",
        shown="512 embedded, 1024 compatible/Ollama, 4096 OpenAI and hosted providers",
    )

    summary: bool = setting(
        True,
        "Fold what the window evicts into a running summary the model keeps seeing (off: the "
        "plain window).",
        check=yes_or_no,
        env="AGENT_SUMMARY",
    )
    summary_tokens: int = setting(
        256,
        "Token budget of the running summary, counted against max_tokens (at most a quarter).",
        check=at_least_one,
        env="AGENT_SUMMARY_TOKENS",
    )
    user_id: str | None = setting(
        None,
        "Whose long-term memory the thread reads and adds to (None: none; on the server: the "
        "authenticated user).",
        check=name_or_none,
        env="AGENT_USER_ID",
        shown="none",
    )
    long_term_memory: bool = setting(
        True,
        "Learn facts about the user after each turn and recall them in their new threads "
        "(needs a user).",
        check=yes_or_no,
        env="AGENT_LONG_TERM_MEMORY",
    )
    memory_tokens: int = setting(
        200,
        "Token budget of the recalled facts, counted against max_tokens (at most a quarter).",
        check=at_least_one,
        env="AGENT_MEMORY_TOKENS",
    )

    def __new__(cls, **given: Any) -> Context:
        """Reject unknown names and remember which fields the caller named.

        LangGraph builds a Context from a run's dict with `Context(**context)`, so this is
        also where a client's typo becomes a clear error instead of a bare TypeError.
        """
        unknown = set(given) - set(field_names())
        if unknown:
            raise UnknownSettingError(unknown, field_names())
        instance = super().__new__(cls)
        object.__setattr__(instance, "_given", frozenset(given))
        return instance

    def __post_init__(self) -> None:
        """Fill the fields the caller left out from the environment, then check every value."""
        given: frozenset[str] = getattr(self, "_given", frozenset())
        for spec in fields(self):
            env: str | None = spec.metadata.get("env")
            text = raw(env) if env and spec.name not in given else None
            if env is None or text is None:
                check_field(spec, getattr(self, spec.name), source=spec.name)
                continue
            setattr(self, spec.name, parse(env, text, field_kind(spec.name)))
            check_field(spec, getattr(self, spec.name), source=env, shown=text)

    @classmethod
    def coerce(cls, value: Context | dict[str, Any] | None) -> Context:
        """Accept what a run may carry: nothing (LangGraph passes None), a dict, or a Context.

        Raises:
            UnknownSettingError: For a dict with a name Context does not have.
            SettingError: For a value out of range.
            TypeError: For anything that is neither a dict nor a Context.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"Context must be a Context or a dict, not {type(value).__name__}.")


@cache
def field_names() -> tuple[str, ...]:
    """The names a Context accepts."""
    return tuple(spec.name for spec in fields(Context))


@cache
def field_kind(name: str) -> Kind:
    """The scalar kind of a field, from its annotation (`int | None` -> int)."""
    hint = get_type_hints(Context)[name]
    options = get_args(hint) or (hint,)
    if bool in options:
        return "bool"
    if int in options:
        return "int"
    return "float" if float in options else "str"


def context_settings() -> list[EnvSetting]:
    """The environment variables Context fields read, for agent.settings' tables."""
    return [
        EnvSetting(
            spec.metadata["env"],
            field_kind(spec.name),
            spec.metadata["shown"],
            spec.metadata["description"],
            "run",
            field=spec.name,
        )
        for spec in fields(Context)
        if spec.metadata.get("env")
    ]


def context_fields() -> list[Field[Any]]:
    """Every Context field with its metadata (descriptions for forms and help screens)."""
    return list(fields(Context))


def check_field(spec: Field[Any], value: Any, *, source: str, shown: object = None) -> None:
    """Raise SettingError naming `source` (the field, or the variable it came from)."""
    check: Check | None = spec.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem:
        raise SettingError(source, value if shown is None else shown, problem)
