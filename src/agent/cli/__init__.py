"""The `agent` command: chat, ask, and manage threads and personas from the terminal."""

from __future__ import annotations

import errno
import sys
from typing import Any

import click
from click.core import ParameterSource

from agent import __version__
from agent.cli.services import Services

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def one_line(error: click.ClickException) -> str:
    """A click error as one line, with a pointer to help for usage errors."""
    message = " ".join(error.format_message().split())
    ctx = getattr(error, "ctx", None)
    if isinstance(error, click.UsageError) and ctx is not None and "Try '" not in message:
        message += f" (see '{ctx.command_path} -h')"
    return f"Error: {message}"


class AgentGroup(click.Group):
    """A group whose errors are one line on stderr: exit 1 for runtime, 2 for usage problems."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command, printing user errors as one line instead of usage blocks."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as error:
            click.echo(one_line(error), err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except OSError as error:
            if error.errno != errno.EPIPE:  # a closed pipe (| head) is not an error
                raise
            sys.stderr.close()
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(
    name="agent",
    cls=AgentGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  agent chat                    chat (the embedded model unless configured)
  agent chat -p tutor           chat with the Python tutor persona
  agent chat -c                 continue the most recent thread
  agent ask "What is a list?"   one question, answer on stdout
  git diff | agent ask -p code_reviewer -
  agent threads list            saved conversations
  agent memory list             what it remembers about you
""",
)
@click.version_option(__version__, "-V", "--version", prog_name="agent")
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    envvar="AGENT_DB_URL",
    show_envvar=True,
    help="Where threads are saved: a SQLite path, sqlite:///file.db, postgresql://..., or "
    "'memory' (default: agent.db in the data directory, $AGENT_HOME).",
)
@click.option(
    "--user",
    "user_id",
    metavar="ID",
    help="Whose long-term memory chat and ask learn and recall, and `agent memory` shows "
    "($AGENT_USER_ID; none: no long-term memory).",
)
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, user_id: str | None) -> None:
    """A chatbot with memory: personas, streaming replies, and an offline embedded model."""
    services = ctx.ensure_object(Services)
    if user_id is not None:
        services.user_id = user_id
    # Only a --db typed on the command line is passed on: a value click read from AGENT_DB_URL
    # is left to memory, which then names AGENT_DB_URL (not --db) when the database fails.
    typed = ctx.get_parameter_source("db_url") is ParameterSource.COMMANDLINE
    if typed and services.memory is None:
        services.db_url = db_url
    ctx.call_on_close(services.close)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="agent")


def _register() -> None:
    """Attach the subcommands (kept in their own modules)."""
    from agent.cli.admin import db, personas, threads
    from agent.cli.chat import ask, chat
    from agent.cli.memory import memory
    from agent.cli.model import model

    for command in (chat, ask, threads, memory, personas, db, model):
        cli.add_command(command)


_register()

__all__ = ["cli", "main"]
