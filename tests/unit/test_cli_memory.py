"""`agent memory` and `/memory` (issue 14): what the bot remembers, in the user's control."""

from __future__ import annotations

import json
from collections.abc import Sequence

from click.testing import CliRunner, Result

from agent.cli import cli
from agent.cli.services import Services
from agent.memory import open_memory
from agent.memory.longterm import UserMemory
from tests.fakes import FakeChat, chat_calls, with_memory_jobs


def run(args: Sequence[str], input: str | None = None, model: FakeChat | None = None) -> Result:
    """`agent ARGS` with a fake model that also summarizes and extracts facts."""
    model = model if model is not None else FakeChat(reply=with_memory_jobs())
    services = Services(chat_model=model, embeddings=None)
    return CliRunner().invoke(cli, list(args), input=input, obj=services)


def remembered(user: str) -> list[str]:
    """The user's facts as stored on disk."""
    with open_memory() as memory:
        return sorted(f.line for f in UserMemory(memory.store, user, None).facts())


def test_chat_learns_about_the_user_and_a_new_chat_recalls_it() -> None:
    first = run(["--user", "priya", "chat"], "Hi, my name is Priya.\n/quit\n")
    assert first.exit_code == 0, first.output
    assert remembered("priya") == ["name: Priya"]
    model = FakeChat(reply=with_memory_jobs())
    second = run(["--user", "priya", "chat"], "What is my name?\n/quit\n", model=model)
    assert second.exit_code == 0, second.output
    assert "- name: Priya" in str(chat_calls(model.calls)[0][0].text)


def test_without_a_user_nothing_is_learned_and_memory_commands_say_how_to_name_one() -> None:
    model = FakeChat(reply=with_memory_jobs())
    assert run(["chat"], "Hi, my name is Priya.\n/memory\n/quit\n", model=model).exit_code == 0
    assert {call[0].text.startswith("You keep notes") for call in model.calls} == {False}
    listed = run(["memory", "list"])
    assert listed.exit_code == 1
    assert listed.output.strip().splitlines() == [
        "Error: Long-term memory belongs to a user: name one with `agent --user NAME ...` or "
        "AGENT_USER_ID=NAME."
    ]


def test_the_environment_names_the_user_too() -> None:
    result = CliRunner().invoke(
        cli,
        ["memory", "set", "diet", "vegetarian"],
        obj=Services(chat_model=FakeChat(), embeddings=None),
        env={"AGENT_USER_ID": "priya"},
    )
    assert result.exit_code == 0, result.output
    assert remembered("priya") == ["diet: vegetarian"]


def test_list_set_forget_clear() -> None:
    assert run(["--user", "priya", "memory", "set", "home city", "Paris"]).exit_code == 0
    assert run(["--user", "priya", "memory", "set", "Home City", "Lyon"]).exit_code == 0
    assert run(["--user", "priya", "memory", "set", "diet", "vegetarian"]).exit_code == 0
    listed = json.loads(run(["--user", "priya", "memory", "list", "--json"]).output)
    assert listed["user"] == "priya"
    assert sorted((m["topic"], m["text"]) for m in listed["memories"]) == [
        ("diet", "vegetarian"),
        ("home city", "Lyon"),
    ]
    table = run(["--user", "priya", "memory", "list"]).output
    assert "home city" in table and "Lyon" in table and "by hand" in table

    forgot = run(["--user", "priya", "memory", "forget", "HOME CITY"])
    assert forgot.exit_code == 0 and remembered("priya") == ["diet: vegetarian"]
    missing = run(["--user", "priya", "memory", "forget", "shoe size"])
    assert missing.exit_code == 1 and "Nothing remembered on 'shoe size'" in missing.output

    kept = run(["--user", "priya", "memory", "clear"], input="n\n")
    assert kept.exit_code == 1 and "nothing was forgotten" in kept.output
    unanswered = run(["--user", "priya", "memory", "clear"], input="")  # a script, no input
    assert unanswered.exit_code == 1 and "nothing was forgotten" in unanswered.output
    assert remembered("priya") == ["diet: vegetarian"]
    cleared = run(["--user", "priya", "memory", "clear", "--yes"])
    assert cleared.exit_code == 0 and "Forgot 1 fact" in cleared.output
    assert remembered("priya") == []


def test_users_are_kept_apart() -> None:
    run(["--user", "priya", "memory", "set", "name", "Priya"])
    sam = json.loads(run(["--user", "sam", "memory", "list", "--json"]).output)
    assert sam == {"user": "sam", "memories": []}
    run(["--user", "sam", "memory", "clear", "--yes"])
    assert remembered("priya") == ["name: Priya"]


def test_a_bad_fact_is_a_one_line_error() -> None:
    result = run(["--user", "priya", "memory", "set", "name", "x" * 500])
    assert result.exit_code == 1
    assert result.output.startswith("Error: A memory must be 1-200 characters")


def test_slash_memory_shows_the_summary_and_the_facts_and_forgets() -> None:
    script = "\n".join(
        [
            "Hi, my name is Priya.",
            "I work as a nurse.",
            "Nice weather today.",
            "/memory",
            "/memory forget job",
            "/memory",
            "/memory clear",
            "/memory sideways",
            "/quit",
            "",
        ]
    )
    services = Services(chat_model=FakeChat(reply=with_memory_jobs()), embeddings=None)
    result = CliRunner().invoke(
        cli, ["--user", "priya", "chat"], input=script, obj=services, env={"AGENT_MAX_TURNS": "2"}
    )
    assert result.exit_code == 0, result.output
    shown = result.output.split("Summary of what the window evicted:")
    assert len(shown) == 3
    assert "The user said: Hi, my name is Priya." in shown[1]
    assert "name: Priya" in shown[1] and "job: nurse" in shown[1]
    assert "job: nurse" not in shown[2] and "name: Priya" in shown[2]
    assert "Forgot job" in result.output and "Forgot 1 fact(s) about priya" in result.output
    assert "Usage: /memory [forget TOPIC | clear]" in result.output
    assert remembered("priya") == []
