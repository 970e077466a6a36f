"""Every environment variable the project reads, declared once: name, type, default, meaning.

Per-run settings are `Context` fields whose metadata names their variable (see agent.context);
process-wide ones (where the model lives, where memory lives, who may use the server) are
declared below. Code reads a variable with `read()`, so a bad value always names the variable,
and the tables in README.md, docs/ and `agent chat -h` are generated from the same list:

    python -m agent.settings          # rewrite the generated tables in README.md and docs/
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.errors import SettingError

Kind = Literal["str", "int", "float", "bool", "path", "secret"]
YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off")
Topic = Literal["run", "persona", "model", "memory", "server", "cli"]


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable: what it holds, its default as shown to users, what it does."""

    name: str
    kind: Kind
    default: str
    description: str
    topic: Topic
    field: str | None = None  # the Context field it fills, for per-run settings


PROCESS_SETTINGS: tuple[EnvSetting, ...] = (
    EnvSetting(
        "AGENT_PERSONA",
        "str",
        "assistant",
        "Persona of new threads (`Context.persona`).",
        "persona",
    ),
    EnvSetting(
        "AGENT_PERSONAS_DIR", "path", "unset", "Directory of your own persona files.", "persona"
    ),
    EnvSetting(
        "AGENT_BACKEND",
        "str",
        "resolved",
        "Force `embedded`, `openai` or `compatible` (else: a base URL means compatible, a key "
        "alone means OpenAI, neither means embedded).",
        "model",
    ),
    EnvSetting(
        "OPENAI_BASE_URL",
        "str",
        "unset",
        "Base URL of an OpenAI-compatible server (ends in `/v1`).",
        "model",
    ),
    EnvSetting("AGENT_BASE_URL", "str", "unset", "Same, wins over `OPENAI_BASE_URL`.", "model"),
    EnvSetting(
        "OPENAI_API_KEY",
        "secret",
        "unset",
        "OpenAI key, or the key of a compatible server.",
        "model",
    ),
    EnvSetting(
        "AGENT_MODEL_PATH", "path", "bundled SmolLM2", "GGUF file for the embedded model.", "model"
    ),
    EnvSetting(
        "AGENT_SLOTS",
        "int",
        "4",
        "Embedded server: conversations generated at once (llama.cpp `n_parallel`).",
        "model",
    ),
    EnvSetting(
        "AGENT_CONTEXT_SIZE",
        "int",
        "2048",
        "Embedded server: context tokens per slot (set by the operator, never by a run).",
        "model",
    ),
    EnvSetting(
        "AGENT_THREADS",
        "int",
        "half the CPUs (at least 1)",
        "Embedded server: CPU threads generating tokens. More threads than free cores make "
        "llama.cpp far slower on a busy machine (docs/models.md).",
        "model",
    ),
    EnvSetting(
        "AGENT_SERVE_API_KEY",
        "secret",
        "random",
        "Key that `agent model serve` requires from clients.",
        "model",
    ),
    EnvSetting(
        "AGENT_DB_URL",
        "str",
        "agent.db in the data directory",
        "Where threads live: a SQLite path, `sqlite:///file.db`, `postgresql://...` or `memory`.",
        "memory",
    ),
    EnvSetting(
        "AGENT_HOME",
        "path",
        "the platform's data directory",
        "Data directory: the default database, chat history, exports.",
        "memory",
    ),
    EnvSetting("NO_COLOR", "str", "unset", "Any value: no colours in the terminal.", "cli"),
    EnvSetting(
        "AGENT_AUTH_TOKENS",
        "secret",
        "unset (server open)",
        "Server: static bearer tokens, `token:user,token:user` (development).",
        "server",
    ),
    EnvSetting("AGENT_JWT_SECRET", "secret", "unset", "Server: HMAC key for JWTs.", "server"),
    EnvSetting(
        "AGENT_JWT_PUBLIC_KEY",
        "str",
        "unset",
        "Server: public key (PEM text or file) for RS/ES-signed JWTs.",
        "server",
    ),
    EnvSetting(
        "AGENT_JWT_ALGORITHMS",
        "str",
        "HS256 or RS256",
        "Server: accepted JWT algorithms.",
        "server",
    ),
    EnvSetting("AGENT_JWT_AUDIENCE", "str", "unset", "Server: required JWT `aud`.", "server"),
    EnvSetting("AGENT_JWT_ISSUER", "str", "unset", "Server: required JWT `iss`.", "server"),
    EnvSetting(
        "AGENT_JWT_USER_CLAIM", "str", "sub", "Server: the JWT claim naming the user.", "server"
    ),
    EnvSetting("AGENT_WEB_GRAPH", "str", "chatbot", "The graph the web page talks to.", "server"),
    EnvSetting(
        "AGENT_SERVER_MODELS",
        "str",
        "unset (no choice)",
        "Server: models clients may pick with `context.model`, comma-separated "
        "(`AGENT_MODEL` is always allowed).",
        "server",
    ),
    EnvSetting(
        "AGENT_SERVER_MAX_REPLY_TOKENS",
        "int",
        "1024",
        "Server: the most `max_reply_tokens` a client may ask for.",
        "server",
    ),
    EnvSetting(
        "AGENT_SERVER_MAX_MESSAGE_BYTES",
        "int",
        "32768",
        "Server: the largest message (UTF-8 JSON bytes) a run may add.",
        "server",
    ),
    EnvSetting(
        "AGENT_SERVER_MAX_INPUT_MESSAGES",
        "int",
        "1",
        "Server: the most messages one run may add.",
        "server",
    ),
    EnvSetting("AGENT_SERVER_HOST", "str", "127.0.0.1", "`make serve`: host to bind.", "server"),
    EnvSetting("AGENT_SERVER_PORT", "int", "2024", "`make serve`: port to bind.", "server"),
    EnvSetting("AGENT_SERVER_JOBS", "int", "4", "`make serve`: runs executed at once.", "server"),
)


# --- reading -------------------------------------------------------------------------------


def raw(name: str) -> str | None:
    """A variable's text, or None when it is unset or blank (blank means unset)."""
    value = os.environ.get(name, "").strip()
    return value or None


def parse(name: str, text: str, kind: Kind) -> Any:
    """Turn a variable's text into its typed value, naming the variable when it cannot."""
    try:
        if kind == "int":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError("not an integer")
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError as error:
        expected = "an integer" if kind == "int" else "a number"
        raise SettingError(name, text, f"must be {expected}") from error
    if kind == "bool":
        if text.lower() not in YES + NO:
            raise SettingError(name, text, "must be one of 1/0, true/false, yes/no, on/off")
        return text.lower() in YES
    if kind == "path":
        return Path(text).expanduser()
    return text


def read(name: str) -> Any:
    """The typed value of a declared variable, or None when it is unset.

    Args:
        name: A variable declared in PROCESS_SETTINGS or by a Context field.

    Returns:
        The parsed value (int, float, Path or str), or None when unset or blank.

    Raises:
        SettingError: If the value cannot be parsed; the message names the variable.
        KeyError: If `name` is not a declared variable (a typo in code, not in the environment).
    """
    setting = declared()[name]
    text = raw(name)
    return None if text is None else parse(name, text, setting.kind)


def declared() -> dict[str, EnvSetting]:
    """All declared variables by name: the Context fields' and the process-wide ones."""
    from agent.context import context_settings  # context imports this module

    return {s.name: s for s in (*context_settings(), *PROCESS_SETTINGS)}


# --- the generated tables ------------------------------------------------------------------


def markdown_table(topics: tuple[Topic, ...]) -> str:
    """The settings of these topics as a Markdown table (for README.md and docs/)."""
    rows = [s for s in declared().values() if s.topic in topics]
    lines = ["| Variable | `Context` field | Default | Meaning |", "|---|---|---|---|"]
    for s in rows:
        field = f"`{s.field}`" if s.field else ""
        lines.append(f"| `{s.name}` | {field} | {s.default} | {s.description} |")
    return "\n".join(lines)


def context_table() -> str:
    """Every Context field (per-run settings) as a Markdown table, with its variable if any."""
    from agent.context import context_fields

    lines = ["| `Context` field | Variable | Default | Meaning |", "|---|---|---|---|"]
    for spec in context_fields():
        env = f"`{spec.metadata['env']}`" if spec.metadata.get("env") else ""
        shown, description = spec.metadata["shown"], spec.metadata["description"]
        lines.append(f"| `{spec.name}` | {env} | {shown} | {description} |")
    return "\n".join(lines)


def text_table(topics: tuple[Topic, ...], width: int = 96) -> str:
    """The same settings as plain text, wrapped to `width` columns, for `-h` screens."""
    rows = [s for s in declared().values() if s.topic in topics]
    name_width = max(len(s.name) for s in rows)
    lines: list[str] = []
    for s in rows:
        text = f"{strip_markup(s.description)} (default: {strip_markup(s.default)})"
        wrapped = textwrap.wrap(text, width - name_width - 4) or [""]
        lines.append(f"  {s.name.ljust(name_width)}  {wrapped[0]}")
        lines += [f"  {'':{name_width}}  {more}" for more in wrapped[1:]]
    return "\n".join(lines)


def strip_markup(text: str) -> str:
    """Drop Markdown backticks for terminal output."""
    return text.replace("`", "")


# Generated blocks: the marker names the topics, e.g. <!-- settings: run persona -->, or
# `context` for the table of Context fields.
BLOCK = re.compile(
    r"(?P<open><!-- settings: (?P<topics>[a-z ]+) -->\n)"
    r"(?P<body>(?:(?!<!-- /?settings).)*?)"  # never runs into another block
    r"(?P<close><!-- /settings -->)",
    re.S,
)


def documents(root: Path) -> list[Path]:
    """The documents that may hold generated blocks: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def regenerate(text: str) -> str:
    """A document with every generated settings block rebuilt from the declarations."""

    def rebuild(match: re.Match[str]) -> str:
        topics: tuple[Any, ...] = tuple(match.group("topics").split())
        table = context_table() if topics == ("context",) else markdown_table(topics)
        return match.group("open") + table + "\n" + match.group("close")

    return BLOCK.sub(rebuild, text)


def main(root: Path = Path(".")) -> int:
    """Rewrite the generated blocks of README.md and docs/ in place."""
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        if (fresh := regenerate(text)) != text:
            path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
