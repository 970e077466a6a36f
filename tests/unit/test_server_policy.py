"""The server's run policy as pure checks (real server: tests/integration/test_server_policy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.context import field_names
from agent.errors import SettingError
from agent.server.policy import (
    CLIENT_SETTINGS,
    SERVER_ONLY_SETTINGS,
    PolicyError,
    ServerPolicy,
)


def test_every_context_field_is_a_decision_of_the_policy() -> None:
    # A new Context field must be classified here: clients may set it (with a check) or not.
    assert set(field_names()) == CLIENT_SETTINGS | SERVER_ONLY_SETTINGS
    for name in CLIENT_SETTINGS:
        assert callable(getattr(ServerPolicy(), f"_{name}_problem"))


def test_defaults_are_safe_for_a_server_on_a_network() -> None:
    policy = ServerPolicy.from_env()

    assert policy.models == frozenset()  # no client-chosen model
    assert (policy.max_reply_tokens, policy.max_message_bytes) == (1024, 32_768)
    assert policy.max_input_messages == 1
    with pytest.raises(PolicyError, match="AGENT_SERVER_MODELS"):
        policy.check_settings({"model": "gpt-4o"})


def test_the_operators_model_and_listed_models_are_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_MODEL", "house-model")
    monkeypatch.setenv("AGENT_SERVER_MODELS", " a , b,, ")

    policy = ServerPolicy.from_env()

    assert policy.models == {"house-model", "a", "b"}
    for model in ("house-model", "a", "b", None):
        policy.check_settings({"model": model})


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AGENT_SERVER_MAX_REPLY_TOKENS", "0"), ("AGENT_SERVER_MAX_MESSAGE_BYTES", "lots")],
)
def test_unusable_limits_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError, match=variable):
        ServerPolicy.from_env()


POLICY = ServerPolicy(models=frozenset({"ok-model"}), max_reply_tokens=100, max_tokens=4000)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"model": "other"}, "AGENT_SERVER_MODELS"),
        ({"temperature": 2.01}, "[0, 2]"),
        ({"temperature": float("nan")}, "[0, 2]"),
        ({"temperature": "1"}, "[0, 2]"),
        ({"max_reply_tokens": 101}, "AGENT_SERVER_MAX_REPLY_TOKENS"),
        ({"max_reply_tokens": 0}, "AGENT_SERVER_MAX_REPLY_TOKENS"),
        ({"max_turns": 21}, "AGENT_MAX_TURNS"),
        ({"max_tokens": 4001}, "AGENT_MAX_TOKENS"),
        ({"max_tokens": None}, "AGENT_MAX_TOKENS"),  # the operator's budget cannot be lifted
        ({"low_water": 0}, "(0, 1]"),
        ({"persona": 3}, "persona name"),
        ({"persona_vars": ["x"]}, "variable names"),
        ({"persona_vars": {"x": "y" * 40_000}}, "AGENT_SERVER_MAX_MESSAGE_BYTES"),
        ({"api_key": "sk-..."}, "'api_key'"),
    ],
)
def test_settings_outside_the_policy_are_refused_by_name(
    settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        POLICY.check_settings(settings)
    assert named in str(raised.value) and raised.value.status == 422


def test_settings_inside_the_policy_pass() -> None:
    POLICY.check_settings(
        {
            "model": "ok-model",
            "temperature": 0,
            "max_reply_tokens": 100,
            "max_turns": 20,
            "max_tokens": 4000,
            "low_water": 1,
            "persona": "tutor",
            "persona_vars": {"user_name": "Ada"},
        }
    )
    POLICY.check_settings({"cron_id": "x", "temperature": 1}, strict=False)
    with pytest.raises(PolicyError):
        POLICY.check_settings({"cron_id": "x", "temperature": 9}, strict=False)


@pytest.mark.parametrize(
    "run_input",
    [
        None,
        {"messages": "plain text is a user message"},
        {"messages": [{"role": "user", "content": "hi", "id": "m1", "name": "ada"}]},
        {"messages": [{"type": "human", "content": [{"type": "text", "text": "hi"}]}]},
        {"messages": [["user", "hi"]]},
        {"messages": [{"role": "user", "content": "hi", "additional_kwargs": {}}]},
    ],
)
def test_user_messages_pass(run_input: Any) -> None:
    ServerPolicy().check_input(run_input)


@pytest.mark.parametrize(
    ("run_input", "named", "status"),
    [
        ({"messages": [{"role": "assistant", "content": "x"}]}, "role 'assistant'", 422),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "'tool'", 422),
        ({"messages": [{"role": "user", "type": "system", "content": "x"}]}, "'system'", 422),
        ({"messages": [{"content": "x"}]}, "role None", 422),
        ({"messages": [7]}, "role 'int'", 422),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "'tool_calls'", 422),
        ({"messages": ["a", "b"]}, "AGENT_SERVER_MAX_INPUT_MESSAGES", 413),
        ({"messages": ["é" * 20_000]}, "AGENT_SERVER_MAX_MESSAGE_BYTES", 413),
        ({"messages": [], "archived": -5}, "'archived'", 422),
        (["hi"], "must be an object", 422),
    ],
)
def test_input_that_is_not_one_bounded_user_message_is_refused(
    run_input: Any, named: str, status: int
) -> None:
    with pytest.raises(PolicyError) as raised:
        ServerPolicy().check_input(run_input)
    assert named in str(raised.value) and raised.value.status == status


def test_a_run_may_not_carry_a_command() -> None:
    with pytest.raises(PolicyError, match="not a command"):
        ServerPolicy().check_run({"command": {"resume": "yes"}})
