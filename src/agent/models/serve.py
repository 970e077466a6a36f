"""`agent model serve`: run the embedded model standalone so several processes share one copy."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

from agent.models.llamacpp.server import EmbeddedServer
from agent.models.llamacpp.settings import ServerSettings


def client_settings(base_url: str, api_key: str) -> str:
    """The shell line that points this package (or any OpenAI client) at the server."""
    key = f" OPENAI_API_KEY={api_key}" if api_key else ""
    return f"export AGENT_BACKEND=embedded OPENAI_BASE_URL={base_url}{key}"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl-C so the server always stops through the same path."""
    raise KeyboardInterrupt


def start(host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> EmbeddedServer:
    """Start the embedded model on host:port (0: a free port) behind an API key (random if None)."""
    settings = ServerSettings.from_env(host=host, port=port)
    if api_key is not None:
        settings = replace(settings, api_key=api_key)
    return EmbeddedServer(settings)


def serve(
    echo: Callable[[str], None],
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
) -> None:
    """Serve until Ctrl-C (or SIGTERM), telling the user how to point clients at it."""
    server = start(host, port, api_key)
    settings = server.settings
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        echo(
            f"Serving {settings.model_path.name} at {server.base_url} "
            f"({settings.slots} slots x {settings.context_per_slot} tokens of context, "
            f"{settings.threads} CPU thread{'s' if settings.threads > 1 else ''})."
        )
        echo("Point other processes at it:")
        echo(f"  {client_settings(server.base_url, settings.api_key)}")
        echo("(AGENT_BACKEND=embedded keeps the role-forgery guard and exact token counts.)")
        echo("Press Ctrl-C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
