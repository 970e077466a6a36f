"""`agent personas`, `agent threads` and `agent db`: look around and tidy up, human or script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from agent.cli import threads as thread_ops
from agent.cli.chat import check_persona, user_errors
from agent.cli.services import Services
from agent.cli.terminal import Terminal
from agent.personas import catalog, get_persona, load_personas

JSON_HELP = "Print JSON (for scripts) instead of a table."


def print_json(document: Any) -> None:
    """Indented JSON on stdout."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


# --- personas ---------------------------------------------------------------------------------


@click.group(
    epilog="""\b
Examples:
  agent personas list
  agent personas show tutor
  AGENT_PERSONAS_DIR=~/personas agent personas list  # yours: TOML/YAML files
"""
)
def personas() -> None:
    """List and inspect personas (built-in ones and your own).

    Your own are the TOML or YAML files in $AGENT_PERSONAS_DIR.
    """


@personas.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def personas_list(as_json: bool) -> None:
    """List the personas with their descriptions."""
    with user_errors():
        found = load_personas()
    for name, error in sorted(catalog().broken.items()):  # the operator's own files: full path
        click.echo(f"Persona {name!r} is unavailable: {error.problem} ({error.path})", err=True)
    if as_json:
        print_json([{"name": n, "description": p.description} for n, p in sorted(found.items())])
        return
    rows = [[name, persona.description] for name, persona in sorted(found.items())]
    Terminal().table(["persona", "description"], rows)


@personas.command("show")
@click.argument("name", callback=check_persona)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def personas_show(name: str, as_json: bool) -> None:
    """Show a persona's system prompt, variables and source file."""
    persona = get_persona(name)
    document = {
        "name": persona.name,
        "description": persona.description,
        "system": persona.system,
        "variables": dict(persona.variables),
        "source": persona.source,
    }
    if as_json:
        print_json(document)
        return
    terminal = Terminal()
    terminal.line(f"{persona.name}: {persona.description}")
    terminal.note(f"source: {persona.source}")
    for variable, default in persona.variables.items():
        terminal.note(f"variable {variable} (default: {default})")
    terminal.line("")
    terminal.line(persona.system)


# --- threads ----------------------------------------------------------------------------------


@click.group(
    epilog="""\b
Examples:
  agent threads list
  agent threads show 3f2a        # a unique prefix of the id is enough
  agent threads export 3f2a --format json -o chat.json
  agent threads delete 3f2a
"""
)
def threads() -> None:
    """List, read, export and delete saved conversations."""


@threads.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def threads_list(services: Services, as_json: bool) -> None:
    """List saved threads, most recently updated first."""
    with user_errors():
        infos = thread_ops.saved_threads(services)
    if as_json:
        print_json([thread_ops.thread_json(info) for info in infos])
        return
    terminal = Terminal()
    if not infos:
        terminal.note("No saved threads yet. Start one with `agent chat` or `agent ask`.")
        return
    terminal.table(thread_ops.THREAD_HEADERS, [thread_ops.thread_row(info) for info in infos])


@threads.command("show")
@click.argument("thread_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def threads_show(services: Services, thread_id: str, as_json: bool) -> None:
    """Show a thread's whole conversation."""
    with user_errors():
        full_id = thread_ops.resolve_thread_id(services, thread_id)
        if as_json:
            click.echo(thread_ops.exported(services, full_id, "json"), nl=False)
            return
        messages = thread_ops.thread_messages(services, full_id)
    terminal = Terminal()
    terminal.note(f"thread {full_id}")
    for message in messages:
        terminal.line(thread_ops.message_line(message))


@threads.command("delete")
@click.argument("thread_id", metavar="ID")
@click.pass_obj
def threads_delete(services: Services, thread_id: str) -> None:
    """Delete a thread: its checkpoints and its archived transcript."""
    with user_errors():
        full_id = thread_ops.resolve_thread_id(services, thread_id)
        thread_ops.remove_thread(services, full_id)
    Terminal().note(f"Deleted thread {full_id}")


@threads.command("export")
@click.argument("thread_id", metavar="ID")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["md", "json"]),
    default="md",
    show_default=True,
    help="Markdown for reading, JSON for tools.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@click.pass_obj
def threads_export(
    services: Services, thread_id: str, fmt: thread_ops.CliFormat, output: Path | None
) -> None:
    """Export a thread's whole conversation as Markdown or JSON."""
    with user_errors():
        full_id = thread_ops.resolve_thread_id(services, thread_id)
        text = thread_ops.exported(services, full_id, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"Cannot write {output}: {error.strerror or error}.") from error
    click.echo(f"Exported thread {full_id} to {output}", err=True)


# --- db ---------------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("migrate")
@click.pass_obj
def db_migrate(services: Services) -> None:
    """Create or update the database schema.

    The database is --db or $AGENT_DB_URL. Safe to run twice, or from two processes at once.
    """
    from agent.memory import migrate  # LangGraph and the drivers: loaded only when needed

    with user_errors():
        where = migrate(services.db_url)
    click.echo(f"Database ready: {where}")
