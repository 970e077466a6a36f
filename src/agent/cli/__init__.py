"""The `agent` command."""

from __future__ import annotations

import sys

import click

from agent import __version__
from agent.chatbot import Chatbot
from agent.errors import AgentError


@click.group()
@click.version_option(__version__, prog_name="agent")
def cli() -> None:
    """A chatbot with memory: personas, streaming, and an embedded offline model."""


@cli.command()
@click.option("-p", "--persona", default=None, envvar="AGENT_PERSONA", help="Persona name.")
def chat(persona: str | None) -> None:
    """Chat interactively (type /quit or press Ctrl-D to leave)."""
    bot = Chatbot(persona)
    click.echo(f"persona {bot.persona} · thread {bot.thread_id} · /quit to leave")
    while True:
        try:
            text = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
        except (EOFError, click.Abort):
            click.echo()
            return
        if text.strip() in ("/quit", "/exit"):
            return
        if not text.strip():
            continue
        try:
            for piece in bot.stream(text):
                click.echo(piece, nl=False)
            click.echo()
        except AgentError as error:
            click.echo(f"Error: {error}", err=True)


def main() -> None:
    """Entry point of the console script."""
    sys.exit(cli())
