"""What a server's clients may send: the operator's limits on run settings and run input.

Plain Python (`Chatbot`, `build_graph`) never sees this policy; the server's auth hooks
(agent.server.auth) apply it to every run, assistant and cron a client creates, before anything
is stored. Each limit comes from an environment variable read once when the server starts:

- AGENT_SERVER_MODELS: model names clients may choose with `context.model`, comma-separated
  (default: none; the operator's own AGENT_MODEL is always allowed).
- AGENT_SERVER_MAX_REPLY_TOKENS: the most `max_reply_tokens` a client may ask for (1024).
- AGENT_SERVER_MAX_MESSAGE_BYTES: the largest input message, as UTF-8 JSON (32768).
- AGENT_SERVER_MAX_INPUT_MESSAGES: the most messages one run may add (1: the window keeps
  only the newest of several unanswered user messages anyway).

Temperature must lie in [0, 2]; `max_turns` and `max_tokens` may only shrink the operator's
window; input may add user messages only (assistant, tool, system and function messages are
the server's to write). A violation raises PolicyError, whose `status` is the HTTP status
(413 for size, 422 otherwise) and whose message names the limit and its variable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.context import Context, is_int, is_number
from agent.errors import SettingError, with_suggestion
from agent.settings import read

CLIENT_SETTINGS = frozenset(
    {
        "persona",
        "persona_vars",
        "model",
        "temperature",
        "max_turns",
        "max_tokens",
        "low_water",
        "max_reply_tokens",
        "summary",
        "long_term_memory",
    }
)
# Context fields clients may never set through the server; every field is in one of the two
# sets, so a new field cannot become client-settable without a decision (and a check).
# user_id: the server uses the authenticated user; the budgets: the operator's (issue 14).
SERVER_ONLY_SETTINGS: frozenset[str] = frozenset({"user_id", "summary_tokens", "memory_tokens"})
INPUT_KEYS = frozenset({"messages"})
USER_ROLES = frozenset({"user", "human"})
USER_MESSAGE_KEYS = frozenset({"role", "type", "content", "id", "name"})
EMPTY_OK_KEYS = frozenset({"additional_kwargs", "response_metadata"})
TEMPERATURE_RANGE = (0.0, 2.0)
DEFAULT_MAX_REPLY_TOKENS = 1024
DEFAULT_MAX_MESSAGE_BYTES = 32_768
DEFAULT_MAX_INPUT_MESSAGES = 1
DEFAULT_MAX_TURNS = 20  # Context's default; from_env takes the operator's actual value


class PolicyError(ValueError):
    """Raised for a run setting or input the server's operator does not allow."""

    def __init__(self, message: str, status: int = 422) -> None:
        self.status = status
        super().__init__(message)


def _limit(name: str, default: int) -> int:
    """A positive integer limit from its variable (unset: the default)."""
    value = read(name)
    if value is None:
        return default
    if value < 1:
        raise SettingError(name, value, "must be a positive integer")
    return int(value)


def _names(text: str) -> frozenset[str]:
    """Comma-separated names, blanks dropped."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def json_size(value: Any) -> int:
    """Bytes of a value as compact UTF-8 JSON: what a client made the server store and send."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", errors="surrogatepass"))


@dataclass(frozen=True)
class ServerPolicy:
    """The operator's limits on what clients send; see the module docstring for the variables."""

    models: frozenset[str] = frozenset()
    max_reply_tokens: int = DEFAULT_MAX_REPLY_TOKENS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_input_messages: int = DEFAULT_MAX_INPUT_MESSAGES
    max_turns: int = DEFAULT_MAX_TURNS
    max_tokens: int | None = None

    @classmethod
    def from_env(cls) -> ServerPolicy:
        """The policy from AGENT_SERVER_* and the operator's own window settings.

        Returns:
            The policy; the operator's AGENT_MODEL joins the allowed models.

        Raises:
            SettingError: If a variable holds an unusable value (the message names it).
        """
        operator = Context()  # the operator's defaults: AGENT_MODEL, AGENT_MAX_TURNS, ...
        models = _names(read("AGENT_SERVER_MODELS") or "")
        return cls(
            models=models | {operator.model} if operator.model else models,
            max_reply_tokens=_limit("AGENT_SERVER_MAX_REPLY_TOKENS", DEFAULT_MAX_REPLY_TOKENS),
            max_message_bytes=_limit("AGENT_SERVER_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES),
            max_input_messages=_limit(
                "AGENT_SERVER_MAX_INPUT_MESSAGES", DEFAULT_MAX_INPUT_MESSAGES
            ),
            max_turns=operator.max_turns,
            max_tokens=operator.max_tokens,
        )

    # --- settings ----------------------------------------------------------------------------

    def check_settings(self, settings: Mapping[str, Any] | None, *, strict: bool = True) -> None:
        """Reject run settings (a run's, assistant's or cron's `context`) outside the policy.

        Args:
            settings: The client's settings dict (`context`, or `config.configurable`).
            strict: Refuse names that are not client settings. Off for `config.configurable`,
                where the server adds its own keys (the run's context never gets those).

        Raises:
            PolicyError: Naming the first setting that is not allowed and the limit it broke.
        """
        if not settings:
            return
        if not isinstance(settings, Mapping):
            raise PolicyError("Run settings (context) must be an object of setting names.")
        unknown = sorted(set(settings) - CLIENT_SETTINGS)
        if strict and unknown:
            raise PolicyError(
                f"Unknown or server-only setting(s) "
                f"{', '.join(with_suggestion(name, CLIENT_SETTINGS) for name in unknown)}: clients "
                f"of this server may set {', '.join(sorted(CLIENT_SETTINGS))}."
            )
        for name, value in settings.items():
            if name not in CLIENT_SETTINGS:
                continue
            problem = getattr(self, f"_{name}_problem")(value)
            if problem:
                raise PolicyError(f"Setting {name}={_shown(value)} is not allowed: {problem}.")

    def _persona_problem(self, value: Any) -> str | None:
        """Persona names are checked by the graph (which knows the installed personas)."""
        return None if value is None or isinstance(value, str) else "it must be a persona name"

    def _persona_vars_problem(self, value: Any) -> str | None:
        """Persona variables end up in every prompt: a map of names, bounded like a message."""
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return "it must map variable names to values"
        if json_size(value) > self.max_message_bytes:
            return (
                f"persona variables may take at most {self.max_message_bytes} bytes "
                "(AGENT_SERVER_MAX_MESSAGE_BYTES)"
            )
        return None

    def _model_problem(self, value: Any) -> str | None:
        """Only models the operator listed: a client must not spend on a model of its choice."""
        if value is None or value in self.models:
            return None
        allowed = ", ".join(sorted(self.models)) or "none; the server's model is used"
        return (
            f"this server lets clients choose only the models its operator listed in "
            f"AGENT_SERVER_MODELS (allowed: {allowed})"
        )

    def _temperature_problem(self, value: Any) -> str | None:
        """Temperature in [0, 2], the range every backend understands."""
        low, high = TEMPERATURE_RANGE
        ok = is_number(value) and low <= value <= high
        return None if ok else f"temperature must be a number in [{low:g}, {high:g}]"

    def _max_reply_tokens_problem(self, value: Any) -> str | None:
        """Replies up to the operator's maximum."""
        if value is None or (is_int(value) and 1 <= value <= self.max_reply_tokens):
            return None
        return (
            f"replies may have 1 to {self.max_reply_tokens} tokens on this server "
            "(AGENT_SERVER_MAX_REPLY_TOKENS)"
        )

    def _max_turns_problem(self, value: Any) -> str | None:
        """A run may narrow the window, never widen it past the operator's."""
        if is_int(value) and 1 <= value <= self.max_turns:
            return None
        return f"max_turns may be 1 to {self.max_turns} on this server (AGENT_MAX_TURNS)"

    def _max_tokens_problem(self, value: Any) -> str | None:
        """A run may shrink the token budget, never grow it past the operator's."""
        limit = self.max_tokens
        if value is None and limit is None:
            return None
        if is_int(value) and value >= 1 and (limit is None or value <= limit):
            return None
        return f"max_tokens may be 1 to {limit} on this server (AGENT_MAX_TOKENS)"

    def _low_water_problem(self, value: Any) -> str | None:
        """Any fraction in (0, 1] is safe: it only decides how far an overflow evicts."""
        return None if is_number(value) and 0 < value <= 1 else "it must be a number in (0, 1]"

    def _summary_problem(self, value: Any) -> str | None:
        """A client may turn its threads' running summary off (or on again)."""
        return None if isinstance(value, bool) else "it must be true or false"

    def _long_term_memory_problem(self, value: Any) -> str | None:
        """A client may keep its runs out of its own long-term memory."""
        return None if isinstance(value, bool) else "it must be true or false"

    # --- input -------------------------------------------------------------------------------

    def check_input(self, run_input: Any) -> None:
        """Reject run input that is not a few bounded user messages.

        Args:
            run_input: The run's `input` as the client sent it (None: no new input).

        Raises:
            PolicyError: Naming what is not allowed (a state key, a role, the count or size).
        """
        if run_input is None:
            return
        if not isinstance(run_input, Mapping):
            raise PolicyError("Run input must be an object: {'messages': [...]}.")
        extra = sorted(set(run_input) - INPUT_KEYS)
        if extra:
            raise PolicyError(
                f"Run input may carry 'messages' only, not {', '.join(map(repr, extra))}: "
                "the rest of a thread's state is the server's to write (settings go in context)."
            )
        messages = run_input.get("messages")
        if messages is None:
            return
        listed = messages if isinstance(messages, list) else [messages]
        for position, message in enumerate(listed, start=1):
            require_user_message(message, position)
        if len(listed) > self.max_input_messages:
            raise PolicyError(
                f"A run may add at most {self.max_input_messages} message(s) on this server "
                f"(AGENT_SERVER_MAX_INPUT_MESSAGES); this one has {len(listed)}.",
                status=413,
            )
        for position, message in enumerate(listed, start=1):
            size = json_size(message)
            if size > self.max_message_bytes:
                raise PolicyError(
                    f"Message {position} is {size} bytes; this server takes at most "
                    f"{self.max_message_bytes} bytes per message (AGENT_SERVER_MAX_MESSAGE_BYTES). "
                    "Shorten it or split it across turns.",
                    status=413,
                )

    def check_run(self, request: Mapping[str, Any]) -> None:
        """Check what a run (or a cron's run payload) carries: settings, input, no commands.

        Args:
            request: The run's kwargs or a cron's payload (`input`, `command`, `context`,
                `config`).

        Raises:
            PolicyError: For the first thing the policy does not allow.
        """
        if request.get("command"):
            raise PolicyError(
                "Runs on this server take messages as input, not a command (resume, update, "
                "goto): its graphs never wait for one."
            )
        self.check_input(request.get("input"))
        self.check_settings(request.get("context"))
        self.check_settings(configurable(request.get("config")), strict=False)


def configurable(config: Any) -> Mapping[str, Any] | None:
    """The client's `config.configurable` (the older spelling of `context`), if any."""
    if isinstance(config, Mapping) and isinstance(config.get("configurable"), Mapping):
        return dict(config["configurable"])
    return None


def require_user_message(message: Any, position: int) -> None:
    """Reject anything but a user message: roles, tool calls and names are the server's.

    Accepts the shapes LangGraph coerces into a user message: a string, ("user", text), or
    a dict with role "user"/type "human" and content, id, name.
    """
    if isinstance(message, str):
        return
    if isinstance(message, list | tuple) and len(message) == 2:
        roles = [message[0]]
    elif isinstance(message, Mapping):
        roles = [message[key] for key in ("role", "type") if key in message] or [None]
    else:
        roles = [type(message).__name__]
    wrong = [role for role in roles if role not in USER_ROLES]
    if wrong:
        raise PolicyError(
            f"Message {position} has role {_shown(wrong[0])}: a run's input may add user "
            "messages only ({'role': 'user', 'content': ...}). Assistant, tool, system and "
            "function messages are written by the server, never by a client."
        )
    if isinstance(message, Mapping):
        _require_plain_fields(message, position)


def _require_plain_fields(message: Mapping[str, Any], position: int) -> None:
    """A user message carries text (or content parts), an id and a name, nothing that acts."""
    extra = sorted(
        key
        for key in set(message) - USER_MESSAGE_KEYS
        if not (key in EMPTY_OK_KEYS and not message[key])
    )
    if extra:
        raise PolicyError(
            f"Message {position} carries {', '.join(map(repr, extra))}: a user message may "
            "carry role, content, id and name only (tool calls are the server's to write)."
        )


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
