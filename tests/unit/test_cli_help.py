"""Every help screen of the `agent` command, as an 80-column terminal shows it."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from agent.cli import cli

WIDTH = 80
NO_REWRAP = "\b"  # click's marker: the paragraph after it keeps its lines


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under `group`, as argument paths (the root is ())."""
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def kept_blocks(text: str) -> list[list[str]]:
    """The paragraphs of a help text or epilog that click must print line for line."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return [
        [line.strip() for line in p.strip("\n").split("\n")[1:] if line.strip()]
        for p in paragraphs
        if p.strip("\n ").startswith(NO_REWRAP)
    ]


PATHS = list(command_paths(cli))


def test_every_command_is_checked() -> None:
    assert {" ".join(p) for p in PATHS} >= {"", "chat", "ask", "threads list", "model serve"}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(("agent", *p)))
def test_help_screen_keeps_its_layout_in_80_columns(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "-h"], terminal_width=WIDTH)

    assert result.exit_code == 0, result.output
    screen = result.output
    assert "\\b" not in screen and NO_REWRAP not in screen  # the marker is never shown
    too_wide = [line for line in screen.splitlines() if len(line) > WIDTH]
    assert not too_wide
    lines = [line.strip() for line in screen.splitlines()]
    command = command_at(path)
    for block in kept_blocks(command.help or "") + kept_blocks(command.epilog or ""):
        missing = [line for line in block if line not in lines]
        assert not missing, f"re-wrapped: {missing}\n{screen}"
    if isinstance(command, click.Group):
        listing = screen.split("\nCommands:\n", 1)[1].split("\n\n")[0]
        assert not [line for line in listing.splitlines() if line.endswith("...")], listing


def test_top_level_help_shows_its_examples_one_per_line() -> None:
    screen = CliRunner().invoke(cli, ["-h"], terminal_width=WIDTH).output
    lines = [line.strip() for line in screen.splitlines()]

    assert "Examples:" in lines
    assert any(line.startswith("agent chat -p tutor ") for line in lines)
    assert any(line.startswith("agent threads list ") for line in lines)
