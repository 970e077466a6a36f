"""`agent memory`: what the bot remembers about you across conversations, in your control."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from agent.cli.admin import JSON_HELP, print_json
from agent.cli.chat import user_errors
from agent.cli.services import Services
from agent.cli.terminal import Terminal
from agent.cli.threads import short_id

if TYPE_CHECKING:
    from agent.memory.longterm import Fact

FACT_HEADERS = ["topic", "fact", "learned in", "updated"]


def fact_rows(facts: Sequence[Fact]) -> list[list[str]]:
    """Facts as table rows."""
    return [
        [
            fact.topic,
            fact.text,
            short_id(fact.source) if fact.source else "by hand",
            fact.updated_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for fact in facts
    ]


@click.group(
    epilog="""\b
Examples:
  agent --user priya memory list
  agent memory set "home city" Lyon
  agent memory forget "home city"
  agent memory clear --yes
  AGENT_USER_ID=priya agent memory list --json
"""
)
def memory() -> None:
    """What the bot remembers about you: list, set, forget.

    Facts are learned after each turn of `agent chat`/`agent ask` and recalled in your new
    threads. They belong to the user named by `agent --user NAME` or $AGENT_USER_ID (with
    neither, there is no long-term memory). $AGENT_LONG_TERM_MEMORY=0 stops learning and
    recalling them.
    """


@memory.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def memory_list(services: Services, as_json: bool) -> None:
    """List what the bot remembers about you, most recent first."""
    with user_errors():
        facts_of = services.user_memory()
        facts = facts_of.facts()
    if as_json:
        print_json({"user": facts_of.user_id, "memories": [fact.to_dict() for fact in facts]})
        return
    terminal = Terminal()
    if not facts:
        terminal.note(f"Nothing remembered about {facts_of.user_id} yet.")
        return
    terminal.table(FACT_HEADERS, fact_rows(facts))


@memory.command("set")
@click.argument("topic")
@click.argument("fact")
@click.pass_obj
def memory_set(services: Services, topic: str, fact: str) -> None:
    """Remember FACT on TOPIC (replacing what was remembered on it)."""
    with user_errors():
        stored = services.user_memory().put(topic, fact)
    Terminal().note(f"Remembered {stored.line}")


@memory.command("forget")
@click.argument("topic")
@click.pass_obj
def memory_forget(services: Services, topic: str) -> None:
    """Forget what the bot remembers on TOPIC (deleted from the database)."""
    with user_errors():
        forgotten = services.user_memory().forget(topic)
    if not forgotten:
        raise click.ClickException(
            f"Nothing remembered on {topic!r}; `agent memory list` shows the topics."
        )
    Terminal().note(f"Forgot {topic}")


def confirmed(question: str) -> bool:
    """Ask yes/no; no answer at all (end of input, as in a script) counts as no."""
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        return False


@memory.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def memory_clear(services: Services, yes: bool) -> None:
    """Forget all the bot remembers about you (deleted from the database)."""
    with user_errors():
        facts_of = services.user_memory()
    if not yes and not confirmed(f"Forget everything remembered about {facts_of.user_id}?"):
        raise click.ClickException("Not confirmed: nothing was forgotten (--yes skips asking).")
    with user_errors():
        count = facts_of.clear()
    Terminal().note(f"Forgot {count} fact{'s' if count != 1 else ''}")
