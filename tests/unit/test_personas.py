"""Personas are data files: built-ins, user files, validation and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.errors import MissingVariableError, PersonaFileError, UnknownPersonaError
from agent.personas import catalog, get_persona, load_personas, parse_persona

BUILTINS = {"assistant", "tutor", "code_reviewer", "cooking_assistant", "travel_planner"}


def test_builtin_personas_load_and_render_with_their_defaults() -> None:
    personas = load_personas()
    assert BUILTINS <= set(personas)
    for persona in personas.values():
        system = persona.format([])[0]
        assert system.type == "system" and "{" not in str(system.content)


def test_builtin_personas_say_what_the_design_asks() -> None:
    tutor = get_persona("tutor").system
    assert "Python" in tutor and "150 words" in tutor and "analog" in tutor
    planner = get_persona("travel_planner").system
    assert all(word in planner for word in ("budget", "dates", "interests", "150 words"))
    assert "recipe" in get_persona("cooking_assistant").system


def test_variables_have_defaults_and_can_be_overridden() -> None:
    tutor = get_persona("tutor")
    assert "the learner" in str(tutor.format([])[0].content)
    assert "talking with Ada" in str(tutor.format([], {"user_name": "Ada"})[0].content)


def test_unknown_persona_lists_the_available_ones() -> None:
    with pytest.raises(UnknownPersonaError) as raised:
        get_persona("pirate")
    message = str(raised.value)
    assert "pirate" in message and all(name in message for name in BUILTINS)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_personas_from_toml_and_yaml_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        "pirate.toml",
        'system = "You are a pirate named {name}."\n[variables]\nname = "Jack"\n',
    )
    write(tmp_path, "haiku.yaml", "description: Answers in haiku\nsystem: Answer only in haiku.\n")
    write(tmp_path, "tutor.toml", 'system = "My own tutor."\n')
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path))
    personas = load_personas()
    assert "You are a pirate named Jack." == personas["pirate"].format([])[0].content
    assert personas["haiku"].description == "Answers in haiku"
    assert personas["tutor"].system == "My own tutor."  # a user file overrides a built-in


def test_edited_persona_files_are_picked_up_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "mood.toml", 'system = "Happy."\n')
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path))
    assert get_persona("mood").system == "Happy."
    write(tmp_path, "mood.toml", 'system = "Grumpy."\n')
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert get_persona("mood").system == "Grumpy."


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('system = "unclosed', "cannot be read"),
        ('description = "no system"', "'system'"),
        ('system = ""', "'system'"),
        ('system = "Hi"\nvariables = "oops"', "'variables'"),
        ('system = "Hi"\ntemperature = 3', "unknown field(s) temperature"),
        ('system = "Hi {"', "not a valid template"),
        ("system = 42", "'system'"),
    ],
)
def test_broken_persona_files_name_the_file_and_field(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "broken.toml", text)
    with pytest.raises(PersonaFileError) as raised:
        parse_persona(path)
    message = str(raised.value)
    assert "broken.toml" in message and problem in message
    assert str(tmp_path) not in message  # server clients see this text: no path
    assert raised.value.path == str(path)  # the operator gets it


def test_a_broken_user_file_takes_out_its_own_persona_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "bad.yaml", "- just\n- a list\n")
    write(tmp_path, "tutor.toml", "system = 42\n")  # a broken override of a built-in
    write(tmp_path, "good.toml", 'system = "I work."\n')
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path))
    with caplog.at_level("WARNING"):
        personas = load_personas()
    assert {"assistant", "good"} <= set(personas) and not {"bad", "tutor"} & set(personas)
    assert get_persona("assistant").name == "assistant"
    with pytest.raises(PersonaFileError, match="bad.yaml") as raised:
        get_persona("bad")
    assert str(tmp_path) not in str(raised.value)
    with pytest.raises(PersonaFileError, match="tutor.toml"):
        get_persona("tutor")  # no silent fall-back to the built-in it overrides
    assert str(tmp_path / "bad.yaml") in caplog.text  # the operator's log names the path
    assert set(catalog().broken) == {"bad", "tutor"}


def test_a_name_defined_by_two_files_is_an_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "pirate.toml", 'system = "Arr from TOML."\n')
    write(tmp_path, "pirate.yml", "system: Arr from YAML.\n")
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path))
    with pytest.raises(PersonaFileError, match="pirate.toml and pirate.yml"):
        get_persona("pirate")
    assert get_persona("tutor").name == "tutor"


def test_a_personas_dir_that_is_not_a_directory_leaves_the_built_ins_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path / "missing"))
    assert BUILTINS <= set(load_personas())
    with pytest.raises(UnknownPersonaError, match="is not a directory"):
        get_persona("pirate")


def test_a_misspelt_persona_gets_a_suggestion() -> None:
    with pytest.raises(UnknownPersonaError, match="did you mean 'tutor'"):
        get_persona("tutr")


def test_missing_variable_without_default_names_it(tmp_path: Path) -> None:
    persona = parse_persona(write(tmp_path, "greeter.toml", 'system = "Greet {guest}."\n'))
    with pytest.raises(MissingVariableError, match="'guest'"):
        persona.format([])
    assert persona.format([], {"guest": "Bo"})[0].content == "Greet Bo."


def test_escaped_braces_stay_literal(tmp_path: Path) -> None:
    persona = parse_persona(write(tmp_path, "json.toml", 'system = "Reply as {{\\"a\\": 1}}."\n'))
    assert persona.format([])[0].content == 'Reply as {"a": 1}.'
