"""The Makefile talks to the user only through its commands' own output."""

from __future__ import annotations

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
# A recipe line (tab-indented) that is a shell comment: make echoes it to the terminal.
RECIPE_COMMENT = re.compile(r"^\t[@+-]*\s*#")


def test_no_recipe_line_is_a_comment() -> None:
    lines = MAKEFILE.read_text(encoding="utf-8").splitlines()
    echoed = [
        f"{number}: {line}" for number, line in enumerate(lines, 1) if RECIPE_COMMENT.match(line)
    ]

    assert echoed == []
