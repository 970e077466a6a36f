"""Settings from one source: explicit beats environment, names are checked, tables are generated."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot, Context, build_graph
from agent.cli import cli
from agent.errors import (
    SettingError,
    UnknownSettingError,
    UnknownVariableError,
)
from agent.settings import declared, documents, read, regenerate
from tests.fakes import FakeChat, model_texts

ROOT = Path(__file__).parents[2]
# A value different from every default, per kind, to tell explicit from environment.
ENV_VALUE = {
    "int": ("7", 7),
    "float": ("0.25", 0.25),
    "str": ("from-env", "from-env"),
    "bool": ("off", False),  # every on/off setting defaults to on
}
EXPLICIT = {"int": 3, "float": 0.5, "str": "explicit", "bool": True}


def env_fields() -> list[Any]:
    return [spec for spec in fields(Context) if spec.metadata.get("env")]


def kind_of(name: str) -> str:
    return declared()[next(s.metadata["env"] for s in env_fields() if s.name == name)].kind


@pytest.mark.parametrize("spec", env_fields(), ids=lambda spec: spec.name)
def test_environment_fills_only_fields_the_caller_left_out(
    spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = kind_of(spec.name)
    text, value = ENV_VALUE[kind]
    monkeypatch.setenv(spec.metadata["env"], text)
    assert getattr(Context(), spec.name) == value
    # Explicit wins, even when it equals the default (the old bug: env won then).
    default = spec.default
    if default is not None:
        assert getattr(Context(**{spec.name: default}), spec.name) == default
    assert getattr(Context(**{spec.name: EXPLICIT[kind]}), spec.name) == EXPLICIT[kind]


def test_the_issue_example_explicit_temperature_and_turns_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_TEMPERATURE", "0.2")
    monkeypatch.setenv("AGENT_MAX_TURNS", "5")
    context = Context(temperature=0.7, max_turns=20)
    assert (context.temperature, context.max_turns) == (0.7, 20)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENT_MAX_TOKENS", "abc"),
        ("AGENT_MAX_TURNS", "1.5"),
        ("AGENT_TEMPERATURE", "warm"),
        ("AGENT_MAX_TURNS", "0"),
        ("AGENT_LOW_WATER", "2"),
    ],
)
def test_a_bad_environment_value_names_its_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError, match=re.escape(f"{variable}={value!r}")):
        Context()


def test_a_bad_explicit_value_names_the_field() -> None:
    with pytest.raises(SettingError, match="max_turns=0 must be an integer >= 1"):
        Context(max_turns=0)
    with pytest.raises(SettingError, match="max_turns=True"):
        Context(max_turns=True)


def test_unknown_names_are_errors_that_suggest_the_right_one() -> None:
    with pytest.raises(UnknownSettingError, match="'max_turn' \\(did you mean 'max_turns'\\?\\)"):
        Context(max_turn=3)
    with pytest.raises(UnknownSettingError):
        Context.coerce({"persona": "tutor", "max_turn": 3})


def test_graph_runs_with_an_unknown_context_key_get_the_friendly_error() -> None:
    graph = build_graph(chat_model=FakeChat(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    with pytest.raises(UnknownSettingError, match="did you mean 'max_turns'"):
        graph.invoke({"messages": [HumanMessage("hi")]}, config, context={"max_turn": 3})
    assert graph.get_state(config).values == {}


def test_a_misspelt_chatbot_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_turn"):
        Chatbot(max_turn=3, chat_model=FakeChat(), checkpointer=InMemorySaver())  # type: ignore[call-arg]


def test_persona_variables_are_an_explicit_mapping_and_typos_are_refused() -> None:
    model, saver = FakeChat(), InMemorySaver()
    with pytest.raises(UnknownVariableError, match="'languge' \\(did you mean 'language'\\?\\)"):
        Chatbot("travel_planner", persona_vars={"languge": "French"}, chat_model=model)
    bot = Chatbot(
        "travel_planner", persona_vars={"language": "French"}, chat_model=model, checkpointer=saver
    )
    bot.say("Hi")
    assert "Reply in French." in model_texts(model.calls[-1])[0][1]
    with pytest.raises(UnknownVariableError):
        bot.switch_persona("cooking_assistant", {"user_name": "Ada"})


def test_a_variable_called_name_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's pirate example (a variable called `name` crashed switch_persona)."""
    (tmp_path / "pirate.toml").write_text(
        'system = "You are {name}, a friendly pirate, talking to {user_name}."\n'
        '[variables]\nname = "Captain Flint"\nuser_name = "matey"\n'
    )
    monkeypatch.setenv("AGENT_PERSONAS_DIR", str(tmp_path))
    model = FakeChat()
    bot = Chatbot("pirate", persona_vars={"name": "Anne"}, chat_model=model)
    bot.say("Ahoy")
    assert "You are Anne, a friendly pirate, talking to matey." == model_texts(model.calls[0])[0][1]


def test_server_context_dicts_get_unknown_persona_variables_refused() -> None:
    graph = build_graph(chat_model=FakeChat(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    context = {"persona": "tutor", "persona_vars": {"username": "Ada"}}
    with pytest.raises(UnknownVariableError, match="did you mean 'user_name'"):
        graph.invoke({"messages": [HumanMessage("hi")]}, config, context=context)


def test_read_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SLOTS", "four")
    with pytest.raises(SettingError, match="AGENT_SLOTS='four' must be an integer"):
        read("AGENT_SLOTS")
    monkeypatch.setenv("AGENT_SLOTS", " ")
    assert read("AGENT_SLOTS") is None


@pytest.mark.parametrize("document", documents(ROOT), ids=lambda path: path.name)
def test_generated_settings_tables_are_up_to_date(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert regenerate(text) == text, f"run `python -m agent.settings` to refresh {document}"


def test_readme_and_models_doc_carry_generated_tables() -> None:
    for name in ("README.md", "docs/models.md"):
        assert "<!-- settings:" in (ROOT / name).read_text(encoding="utf-8"), name


def test_every_variable_the_code_reads_is_declared() -> None:
    names = set(declared())
    used = set()
    for path in (ROOT / "src" / "agent").rglob("*.py"):
        used |= set(re.findall(r"\"((?:AGENT|OPENAI)_[A-Z_]+)\"", path.read_text()))
    assert used <= names, f"declare these in agent.settings: {sorted(used - names)}"


def test_chat_help_lists_every_run_setting() -> None:
    result = CliRunner().invoke(cli, ["chat", "-h"])
    assert result.exit_code == 0
    for setting in declared().values():
        if setting.topic in ("run", "persona"):
            assert setting.name in result.output


def test_empty_and_neighbouring_blocks_are_each_filled() -> None:
    text = (
        "a\n<!-- settings: context -->\n<!-- /settings -->\nb\n"
        "<!-- settings: memory -->\nstale\n<!-- /settings -->\nc\n"
    )
    fresh = regenerate(text)
    assert fresh.count("<!-- /settings -->") == 2 and "stale" not in fresh
    assert "| `max_turns` |" in fresh and "| `AGENT_DB_URL` |" in fresh
    assert fresh.startswith("a\n") and "\nb\n" in fresh and fresh.endswith("c\n")
    assert regenerate(fresh) == fresh


def test_switching_persona_drops_variables_the_new_one_does_not_use() -> None:
    model = FakeChat()
    bot = Chatbot("tutor", persona_vars={"user_name": "Ada"}, chat_model=model)
    bot.say("hi")
    bot.switch_persona("cooking_assistant", {"language": "French"})
    bot.say("a recipe?")  # the tutor's user_name must not make this turn fail
    assert "Reply in French." in model_texts(model.calls[-1])[0][1]
    bot.switch_persona("tutor")
    bot.say("back")
    assert "talking with Ada" in model_texts(model.calls[-1])[0][1]  # the thread kept it
