"""`agent model ...`: the embedded model as a standalone server other processes can share."""

from __future__ import annotations

import click

from agent.errors import AgentError


@click.group()
def model() -> None:
    """The embedded llama.cpp model, shared between processes.

    The model is SmolLM2 unless AGENT_MODEL_PATH names another GGUF file.
    """


@model.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on (0: a free one)."
)
@click.option(
    "--api-key",
    envvar="AGENT_SERVE_API_KEY",
    show_envvar=True,
    default=None,
    help="Key clients must send (default: a random one, printed; '' for none).",
)
def serve(host: str, port: int, api_key: str | None) -> None:
    """Serve the embedded model over HTTP (OpenAI-compatible).

    It runs until Ctrl-C. Several processes then share one loaded model: point them at it with
    the printed `export ...` line (OPENAI_BASE_URL and OPENAI_API_KEY).
    """
    from agent.models.serve import serve as run_server

    try:
        run_server(lambda line: click.echo(line), host=host, port=port, api_key=api_key)
    except AgentError as error:
        raise click.ClickException(str(error)) from error
