"""The process `make serve` runs: LangGraph's in-memory dev server, reloading on code edits only.

`langgraph dev --reload` hands uvicorn no directories to watch, so it watches the whole working
directory: the virtualenv, and `.langgraph_api/`, which the server itself rewrites every 10 s
while idle ("3 changes detected" in the log forever). This runs the same server function
`langgraph dev` runs (`langgraph_api.cli.run_server`, with the same langgraph.json keys) and
tells the reloader to watch the code directories only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# The directories whose edits restart the server (those that exist in the working directory).
CODE_DIRS = ("src", "graphs", "examples")


def code_dirs(root: Path) -> list[str]:
    """The code directories under `root` the reloader watches."""
    return [str(root / name) for name in CODE_DIRS if (root / name).is_dir()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options `agent.server.dev` passes on."""
    parser = argparse.ArgumentParser(prog="python -m agent.server.devserver")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--config", required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve langgraph.json's graphs as `langgraph dev --no-browser` does, watching code only."""
    from langgraph_api.cli import run_server  # type: ignore[import-untyped]
    from langgraph_cli.config import validate_config_file

    args = parse_args(argv)
    config = validate_config_file(Path(args.config))
    root = Path.cwd()
    sys.path.append(str(root))  # as `langgraph dev`: the graphs import from the project
    for dependency in config.get("dependencies", []):
        if (root / dependency).is_dir():
            sys.path.append(str(root / dependency))
    run_server(
        args.host,
        args.port,
        True,
        config.get("graphs", {}),
        n_jobs_per_worker=args.jobs,
        open_browser=False,
        env=config.get("env"),
        store=config.get("store"),
        auth=config.get("auth"),
        http=config.get("http"),
        ui=config.get("ui"),
        ui_config=config.get("ui_config"),
        webhooks=config.get("webhooks"),
        checkpointer=config.get("checkpointer"),
        disable_persistence=config.get("disable_persistence", False),
        reload_dirs=code_dirs(root),
    )


if __name__ == "__main__":
    main()
