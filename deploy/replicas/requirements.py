"""Print the project's runtime requirements minus those langgraph-runtime-pg pins itself.

langgraph-runtime-pg pins langgraph-checkpoint-postgres==3.1.0 (and langgraph-api==0.11.1), so
the replicas' virtualenv installs the project with --no-deps plus this list.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PINNED_BY_RUNTIME = {"langgraph-checkpoint-postgres", "langgraph-api"}


def name(requirement: str) -> str:
    """The normalized distribution name of a requirement string."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return (match.group(0) if match else requirement).lower().replace("_", "-")


def main() -> None:
    """Print one requirement per line."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    for requirement in project["dependencies"]:
        if name(requirement) not in PINNED_BY_RUNTIME:
            sys.stdout.write(requirement + "\n")


if __name__ == "__main__":
    main()
