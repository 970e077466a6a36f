"""Personas: prompt templates kept as data files (built-in ones here, users' in AGENT_PERSONAS_DIR).

A persona file (TOML or YAML) holds `system` (the system prompt, with optional `{variables}`),
an optional `description`, and optional `variables` giving defaults for those variables.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from agent.errors import (
    MissingVariableError,
    PersonaFileError,
    UnknownPersonaError,
    UnknownVariableError,
)
from agent.settings import read

if TYPE_CHECKING:  # LangChain loads only when a prompt is built, so `agent -h` starts fast
    from langchain_core.messages import BaseMessage
    from langchain_core.prompts import ChatPromptTemplate

log = logging.getLogger(__name__)
BUILTIN_DIR = Path(__file__).parent / "builtin"
PERSONA_SUFFIXES = (".toml", ".yaml", ".yml")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_FIELDS = {"system", "description", "variables"}


@dataclass(frozen=True)
class Persona:
    """Who the bot is: a system prompt template plus defaults for its variables."""

    name: str
    system: str
    description: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def template(self) -> ChatPromptTemplate:
        """The prompt: the system message first, then the conversation window."""
        from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

        return ChatPromptTemplate.from_messages(
            [("system", self.system), MessagesPlaceholder("messages")]
        )

    @property
    def required_variables(self) -> list[str]:
        """Variables the system prompt uses (those without defaults must be supplied)."""
        return sorted(set(self.template.input_variables) - {"messages"})

    @property
    def declared_variables(self) -> list[str]:
        """Every variable a caller may set: those the prompt uses and those with defaults."""
        return sorted({*self.required_variables, *self.variables})

    def check_variables(self, given: Mapping[str, Any]) -> None:
        """Refuse variables this persona does not declare (so a typo is not silently ignored).

        Raises:
            UnknownVariableError: Naming the unknown names and the declared ones.
        """
        unknown = set(given) - set(self.declared_variables)
        if unknown:
            raise UnknownVariableError(self.name, unknown, self.declared_variables)

    def values(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Merge defaults and given values, failing on the first variable that has neither."""
        merged = {**self.variables, **(given or {})}
        for name in self.required_variables:
            if name not in merged:
                raise MissingVariableError(self.name, name)
        return {name: merged[name] for name in self.required_variables}

    def format(
        self, messages: Sequence[BaseMessage], given: Mapping[str, Any] | None = None
    ) -> list[BaseMessage]:
        """Build the model input: this persona's system message, then the window."""
        return self.template.format_messages(messages=list(messages), **self.values(given))


def parse_persona(path: Path) -> Persona:
    """Read and validate one persona file, naming the file and field on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except OSError as error:  # its text names the full path: keep that for the operator
        raise PersonaFileError(str(path), f"cannot be read: {error.strerror}") from error
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise PersonaFileError(str(path), f"cannot be read: {error}") from error
    if not _NAME.match(path.stem):
        raise PersonaFileError(str(path), "file name must be letters, digits, '-' or '_'")
    if not isinstance(data, dict):
        raise PersonaFileError(str(path), "must be a table/mapping with a 'system' field")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise PersonaFileError(
            str(path),
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}",
        )
    system = data.get("system")
    if not isinstance(system, str) or not system.strip():
        raise PersonaFileError(str(path), "field 'system' must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise PersonaFileError(str(path), "field 'description' must be a string")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in variables.items()
    ):
        raise PersonaFileError(str(path), "field 'variables' must map names to string defaults")
    persona = Persona(
        name=path.stem,
        system=system.strip(),
        description=description.strip(),
        variables={k: str(v) for k, v in variables.items()},
        source=str(path),
    )
    _check_template(persona)
    return persona


def _check_template(persona: Persona) -> None:
    """Fail early on a system prompt whose braces do not form a valid template."""
    try:
        persona.required_variables  # noqa: B018 - parsing the template is the check
    except (ValueError, KeyError) as error:
        raise PersonaFileError(
            persona.source, f"field 'system' is not a valid template ({error}); write {{{{ for {{"
        ) from error


def persona_files(directory: Path) -> list[Path]:
    """List the persona files in a directory, in a stable order."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in PERSONA_SUFFIXES and p.is_file())


def user_personas_dir() -> Path | None:
    """The directory of the user's own personas, from AGENT_PERSONAS_DIR."""
    value = read("AGENT_PERSONAS_DIR")
    return Path(value) if value is not None else None


def _signature(directory: Path | None) -> tuple[tuple[str, float], ...]:
    """Files and modification times, so edits to persona files are picked up without restart."""
    if directory is None:
        return ()
    return tuple((str(p), p.stat().st_mtime) for p in persona_files(directory))


@dataclass(frozen=True)
class Catalog:
    """What the persona files hold: usable personas, and the broken ones by name.

    A broken user file takes out its own persona only; every other persona (the built-ins
    included) keeps working. `problem` says why AGENT_PERSONAS_DIR gave nothing, if it did not.
    """

    personas: Mapping[str, Persona]
    broken: Mapping[str, PersonaFileError]
    problem: str | None = None


def _by_name(files: Sequence[Path]) -> dict[str, list[Path]]:
    """Group persona files by the persona name they define (their stem)."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(path.stem, []).append(path)
    return groups


def _read_user_files(directory: Path) -> tuple[dict[str, Persona], dict[str, PersonaFileError]]:
    """Parse every user file; a bad file or a name defined twice is recorded, not raised."""
    personas: dict[str, Persona] = {}
    broken: dict[str, PersonaFileError] = {}
    for name, paths in _by_name(persona_files(directory)).items():
        if len(paths) > 1:
            listed = " and ".join(p.name for p in paths)
            broken[name] = PersonaFileError(
                str(paths[0]), f"defines {name!r} twice ({listed}): keep one"
            )
            continue
        try:
            personas[name] = parse_persona(paths[0])
        except PersonaFileError as error:
            broken[name] = error
    return personas, broken


@lru_cache(maxsize=8)
def _load(directory: str | None, signature: tuple[tuple[str, float], ...]) -> Catalog:
    """Built-ins, then the user's files (which may override a built-in by name)."""
    del signature  # part of the cache key only
    personas = {p.stem: parse_persona(p) for p in persona_files(BUILTIN_DIR)}
    if directory is None:
        return Catalog(personas, {})
    if not Path(directory).is_dir():
        problem = f"AGENT_PERSONAS_DIR={directory} is not a directory"
        log.warning("%s: only the built-in personas are available.", problem)
        return Catalog(personas, {}, problem)
    users, broken = _read_user_files(Path(directory))
    for name, error in broken.items():
        log.warning("Persona %r is unavailable: %s (%s)", name, error, error.path)
        personas.pop(name, None)  # a broken override must not silently fall back
    return Catalog({**personas, **users}, broken)


def catalog(directory: Path | None = None) -> Catalog:
    """The personas and broken persona files; `directory` defaults to AGENT_PERSONAS_DIR."""
    directory = directory if directory is not None else user_personas_dir()
    return _load(str(directory) if directory else None, _signature(directory))


def load_personas(directory: Path | None = None) -> dict[str, Persona]:
    """All usable personas by name (broken user files are left out: see `catalog`)."""
    return dict(catalog(directory).personas)


def get_persona(name: str, directory: Path | None = None) -> Persona:
    """Look a persona up by name.

    Args:
        name: The persona's name (its file's stem).
        directory: The user's persona directory (default: AGENT_PERSONAS_DIR).

    Returns:
        The persona.

    Raises:
        PersonaFileError: If its file is broken (the message names the file, not its path).
        UnknownPersonaError: If no persona has that name; lists the available ones.
    """
    found = catalog(directory)
    if name in found.broken:
        raise found.broken[name]
    if name not in found.personas:
        raise UnknownPersonaError(name, found.personas, note=found.problem)
    return found.personas[name]


__all__ = ["Catalog", "Persona", "catalog", "get_persona", "load_personas", "parse_persona"]
