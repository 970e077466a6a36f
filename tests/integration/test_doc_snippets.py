"""Every Python snippet in README.md and docs/*.md runs as written (issue 12 item 11).

How it works, for whoever writes docs:
- Each ```python block is a complete script: imports included, no top-level `await` (wrap async
  code in `async def main()` + `asyncio.run(main())`). It runs with this suite's Python from the
  repository root, against the real embedded model (replies capped at 16 tokens), with a
  throwaway AGENT_HOME; it passes when it exits 0. Tracebacks give the doc's own line numbers.
- A snippet that talks to the server: put `<!-- snippet: server -->` on the line above the
  fence. It runs against a real `langgraph dev` this module starts; its `127.0.0.1:2024` is
  replaced by that server's address (the only change made to any snippet).
- A snippet that cannot run here (needs your PostgreSQL, an API key, a fragment of a session):
  `<!-- snippet: not run: <why> -->` above the fence. The reason is required.
- Shell blocks that run a project script use `.venv/bin/python` (what `make chat`/`make test`
  set up), never a bare `python`, which is the system's and lacks the package.
Failures name the snippet as file:line (the line of its first code line).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.server.dev import ServerProcess
from tests.conftest import ISOLATED_VARS
from tests.integration.server_harness import start_dev_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED_SERVER = "127.0.0.1:2024"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[a-z ]+?)\s*(?::\s*(?P<reason>.*?))?\s*-->")
KINDS = {"server", "not run"}
PYTHON_INFO = {"python", "py"}
SHELL_INFO = {"bash", "sh", "shell", "console"}
BARE_PYTHON = re.compile(r"(^|[;&|(]\s*|\$\(\s*)(python3?)\s+(?!-m\s+venv)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a doc, with the marker on the line above it (if any)."""

    path: Path
    line: int  # 1-based line of the block's first code line
    info: str
    code: str
    kind: str = ""
    reason: str = ""

    @property
    def where(self) -> str:
        """file:line, as failure messages and test ids name it."""
        return f"{shown(self.path)}:{self.line}"


def shown(path: Path) -> str:
    """A doc's path as messages show it: relative to the repository when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def documents() -> list[Path]:
    """The docs whose snippets are checked: README.md and docs/*.md."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(path: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown file (indented ones dedented), in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        fence = opening["fence"]
        end = number + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        marker = MARKER.match(lines[number - 1]) if number else None
        yield Block(
            path=path,
            line=number + 2,
            info=opening["info"].lower(),
            code=textwrap.dedent("\n".join(lines[number + 1 : end])),
            kind=marker["kind"] if marker else "",
            reason=(marker["reason"] or "").strip() if marker else "",
        )
        number = end + 1


def python_snippets(kind: str) -> list[Block]:
    """The Python blocks of every doc that carry this marker kind ('' for plain ones)."""
    return [
        block
        for path in documents()
        for block in blocks(path)
        if block.info in PYTHON_INFO and block.kind == kind
    ]


def snippet_env(home: Path) -> dict[str, str]:
    """The suite's environment for a snippet: no user settings or keys, a throwaway home."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARS}
    paths = [str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")]
    env.update(AGENT_HOME=str(home), AGENT_MAX_REPLY_TOKENS="16", HF_HUB_OFFLINE="1")
    env.update(PYTHONPATH=os.pathsep.join(p for p in paths if p), LANGSMITH_TRACING="false")
    return env


def run_snippet(block: Block, code: str, tmp_path: Path) -> None:
    """Run the code as a script whose line numbers are the doc's, and fail naming file:line."""
    script = tmp_path / f"{block.path.name}.py"
    script.write_text("\n" * (block.line - 1) + code + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO,
        env=snippet_env(tmp_path / "agent-home"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.where}: the snippet exited with {result.returncode} "
        f"(line numbers below are {block.path.name}'s):\n{result.stderr[-3000:]}"
    )


def ids(snippets: list[Block]) -> list[str]:
    return [block.where for block in snippets]


# --- the markers and the shell blocks are well-formed ----------------------------------------


def marker_problems(paths: list[Path]) -> list[str]:
    """Markers that are unknown, lack a reason, or stand above no code block."""
    problems = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if "<!--" not in line or "snippet" not in line:
                continue
            marker = MARKER.match(line)
            if marker is None or marker["kind"] not in KINDS:
                problems.append(f"{shown(path)}:{number}: unknown marker {line.strip()!r}")
            elif marker["kind"] == "not run" and not (marker["reason"] or "").strip():
                problems.append(f"{shown(path)}:{number}: 'not run' needs a reason")
            elif number == len(lines) or not FENCE.match(lines[number]):
                problems.append(f"{shown(path)}:{number}: no code block right below the marker")
    return problems


def bare_python_lines(paths: list[Path]) -> list[str]:
    """Shell lines that run `python`/`python3` (the system's) instead of .venv/bin/python."""
    found = []
    for path in paths:
        for block in blocks(path):
            if block.info not in SHELL_INFO or block.kind == "not run":
                continue
            for offset, line in enumerate(block.code.splitlines()):
                if BARE_PYTHON.search(line.split("#", 1)[0]):
                    found.append(f"{shown(path)}:{block.line + offset}: {line.strip()}")
    return found


def test_every_marker_is_known_and_every_not_run_says_why() -> None:
    problems = marker_problems(documents())
    assert not problems, "\n".join(problems)


def test_server_snippets_use_the_documented_address() -> None:
    wrong = [b.where for b in python_snippets("server") if DOCUMENTED_SERVER not in b.code]
    assert not wrong, f"server snippets without {DOCUMENTED_SERVER}: {wrong}"


def test_shell_blocks_run_project_scripts_with_the_project_python() -> None:
    found = bare_python_lines(documents())
    assert not found, "use .venv/bin/python (the system's python lacks the package):\n" + (
        "\n".join(found)
    )


def test_the_checks_would_see_a_broken_snippet(tmp_path: Path) -> None:
    """Guard against checks that cannot fail: a doc with a bad snippet, marker and command."""
    doc = tmp_path / "selftest.md"
    doc.write_text(
        "# t\n\n```python\nx = 1\nimport nowhere_to_be_found\n```\n\n<!-- snippet: not run -->\n"
        "```python\nx = 1\n```\n\n```bash\npython examples/rag_assistant.py\n```\n",
        encoding="utf-8",
    )
    found = list(blocks(doc))
    assert [(b.line, b.kind) for b in found] == [(4, ""), (10, "not run"), (14, "")]
    with pytest.raises(AssertionError, match=r"(?s)selftest.md:4: .*line 5"):
        run_snippet(found[0], found[0].code, tmp_path)
    assert marker_problems([doc]) == [f"{doc}:8: 'not run' needs a reason"]
    assert bare_python_lines([doc]) == [f"{doc}:14: python examples/rag_assistant.py"]


# --- the snippets run -------------------------------------------------------------------------


@pytest.mark.parametrize("block", python_snippets(""), ids=ids(python_snippets("")))
def test_snippet_runs_as_written(block: Block, tmp_path: Path) -> None:
    run_snippet(block, block.code, tmp_path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real `langgraph dev` with this repository's graphs, on the embedded model."""
    running = start_dev_server(
        tmp_path_factory.mktemp("doc-server"), env={"AGENT_MAX_REPLY_TOKENS": "16"}, jobs=2
    )
    yield running
    running.stop()


@pytest.mark.parametrize("block", python_snippets("server"), ids=ids(python_snippets("server")))
def test_server_snippet_runs_against_a_real_server(
    block: Block, server: ServerProcess, tmp_path: Path
) -> None:
    address = server.url.removeprefix("http://")
    run_snippet(block, block.code.replace(DOCUMENTED_SERVER, address), tmp_path)
