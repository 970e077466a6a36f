"""Start real LangGraph server processes for tests: the project's config, test graphs, free port."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.server.dev import ServerProcess, dev_command, free_port, offline_env, start_server
from tests.conftest import ISOLATED_VARS

REPO = Path(__file__).resolve().parents[2]
FAKE_GRAPH = Path(__file__).with_name("fake_server_graph.py")
AUTH_VARS = ("AGENT_AUTH_TOKENS", "AGENT_JWT_SECRET", "AGENT_JWT_PUBLIC_KEY")


def absolute(spec: str) -> str:
    """A langgraph.json "path:attr" spec made absolute against the repository root."""
    path, _, attr = spec.partition(":")
    return f"{(REPO / path).resolve()}:{attr}"


def server_config(
    directory: Path,
    graphs: Mapping[str, str] | None = None,
    *,
    web_app: bool = True,
    source: Path = REPO / "langgraph.json",
) -> Path:
    """A real langgraph.json (`source`) with absolute paths and extra test graphs, for a tmp dir.

    `web_app=False` leaves out the web page's custom app (a stock server, for comparisons).
    """
    config: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    if not web_app:
        config.pop("http", None)
    config["graphs"] = {name: absolute(spec) for name, spec in config["graphs"].items()}
    config["graphs"].update(graphs or {})
    if "auth" in config:
        config["auth"] = {**config["auth"], "path": absolute(config["auth"]["path"])}
    # Relative to the server's working directory (a fresh tmp dir): no .env there, which also
    # proves a missing .env does not stop the server, and a developer's .env never leaks in.
    config["env"] = ".env"
    path = directory / "langgraph.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def server_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment minus keys and user settings, plus test-only values."""
    env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED_VARS, *AUTH_VARS)}
    env.update(AGENT_HOME=str(home / "agent-home"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false")
    env.update(extra or {})
    return offline_env(env)


def start_dev_server(
    directory: Path,
    *,
    env: Mapping[str, str] | None = None,
    jobs: int = 4,
    graphs: Mapping[str, str] | None = None,
    web_app: bool = True,
) -> ServerProcess:
    """`langgraph dev` on a free port: graphs `chatbot`, `fake`, `probe` and any `graphs` given."""
    directory.mkdir(parents=True, exist_ok=True)
    graphs = {"fake": f"{FAKE_GRAPH}:graph", "probe": f"{FAKE_GRAPH}:store_probe", **(graphs or {})}
    config = server_config(directory, graphs, web_app=web_app)
    port = free_port()
    command = dev_command(port=port, jobs=jobs, config=config, reload=False)
    return start_server(
        command,
        url=f"http://127.0.0.1:{port}",
        log=directory / "server.log",
        env=server_env(directory, env),
        cwd=directory,
    )


def user_message(text: str) -> dict[str, Any]:
    """Graph input carrying one user message."""
    return {"messages": [{"role": "user", "content": text}]}
