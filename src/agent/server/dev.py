"""Start LangGraph servers offline on a known port (`make serve`), and in the background for tests.

`langgraph dev` silently moves to another port when its port is taken, so a client pointed at
the usual address would talk to some other server. `serve` checks the port first and also
watches the server's output for the move, failing with a clear message either way.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2024
# One job per embedded-model slot (AGENT_SLOTS, default 4): more would only queue at the model.
DEFAULT_JOBS = 4
PORT_MOVED = re.compile(r"Port (\d+) is already in use, using port (\d+) instead")
STUDIO_LINE = "Studio UI:"  # langgraph-api's banner links to a hosted page
OFFLINE = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true"}


class ServerStartError(RuntimeError):
    """Raised when a server process exits or stays unready; carries the end of its log."""


def port_available(host: str, port: int) -> bool:
    """Whether a server could bind host:port now (the same test `langgraph dev` makes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_taken_message(host: str, port: int) -> str:
    """What to tell a user whose port is busy."""
    return (
        f"Port {port} on {host} is already in use (another `langgraph dev` or `make serve`?). "
        f"Stop that server, or choose another port: make serve PORT={port + 1}"
    )


def offline_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a server that never phones home (tracing only if asked for)."""
    env = dict(os.environ if base is None else base)
    env.update(OFFLINE)
    env.setdefault("LANGSMITH_TRACING", "false")
    return env


def venv_tool(name: str) -> str:
    """A console script installed next to this Python (the project's virtualenv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def dev_command(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    jobs: int = DEFAULT_JOBS,
    config: str | Path = "langgraph.json",
    reload: bool = True,
) -> list[str]:
    """The command line for a headless server on host:port.

    Without reload it is `langgraph dev --no-reload`; with reload, `agent.server.devserver`
    (the same server, its reloader watching the code directories only).
    """
    if reload:
        return [
            *(sys.executable, "-m", "agent.server.devserver", "--host", host, "--port", str(port)),
            *("--jobs", str(jobs), "--config", str(config)),
        ]
    command = [venv_tool("langgraph"), "dev", "--no-browser", "--host", host, "--port", str(port)]
    return [*command, "--n-jobs-per-worker", str(jobs), "--config", str(config), "--no-reload"]


def moved_port(line: str) -> int | None:
    """The port the server moved to, if this output line says it did."""
    match = PORT_MOVED.search(line)
    return int(match.group(2)) if match else None


def relay_until_exit(process: subprocess.Popen[str], out: IO[str], host: str, port: int) -> int:
    """Echo the server's output; stop it at once if it moved off the requested port."""
    assert process.stdout is not None
    for line in process.stdout:
        if STUDIO_LINE in line:
            continue  # a hosted web UI: this server is offline (the API and its docs are local)
        out.write(line)
        out.flush()
        if moved_port(line) is not None:
            process.terminate()
            process.wait()
            raise click.ClickException(port_taken_message(host, port))
    return process.wait()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default=DEFAULT_HOST, show_default=True, envvar="AGENT_SERVER_HOST")
@click.option("--port", "-p", default=DEFAULT_PORT, show_default=True, envvar="AGENT_SERVER_PORT")
@click.option(
    "--jobs",
    "-j",
    default=DEFAULT_JOBS,
    show_default=True,
    envvar="AGENT_SERVER_JOBS",
    help="Runs executed at once (--n-jobs-per-worker).",
)
@click.option("--config", "-c", default="langgraph.json", show_default=True)
@click.option("--reload/--no-reload", default=True, show_default=True, help="Restart on edits.")
def main(host: str, port: int, jobs: int, config: str, reload: bool) -> None:
    """Run `langgraph dev` offline on HOST:PORT, or fail clearly if the port is taken."""
    if not Path(config).is_file():
        raise click.ClickException(f"{config} not found: run this from the project root.")
    if not port_available(host, port):
        raise click.ClickException(port_taken_message(host, port))
    command = dev_command(host=host, port=port, jobs=jobs, config=config, reload=reload)
    click.echo(f"Serving on http://{host}:{port} ({jobs} concurrent runs); Ctrl-C stops.", err=True)
    process = subprocess.Popen(
        command,
        env={**offline_env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        code = relay_until_exit(process, sys.stdout, host, port)
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        code = process.wait()
    sys.exit(0 if code in (0, -signal.SIGINT, 130) else code)


@dataclass
class ServerProcess:
    """A server started in its own process group, so stopping it stops its children too."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for error messages."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until GET /ok answers, or raise with the log if the server died or hung."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"Server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/ok", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"Server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _signal(self, sig: signal.Signals) -> None:
        """Send a signal to the whole process group, if it still exists."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Crash the server (SIGKILL, no shutdown hooks), as a machine failure would."""
        self._signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, grace: float = 10.0) -> None:
        """Shut down gracefully, then force it."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)
        self.process.wait()


def start_server(
    command: Sequence[str],
    *,
    url: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
) -> ServerProcess:
    """Start a server command in the background and wait until it answers /ok."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(process, url, log)
    server.wait_ready(timeout)
    return server


if __name__ == "__main__":
    main()
