"""The embedded server's lifecycle: lazy, loopback-only, keyed, sized, stoppable, clear failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import HumanMessage

from agent import Context
from agent.errors import EmbeddedModelError, SettingError
from agent.models import EmbeddedBackend
from agent.models.llamacpp.paths import default_model_path
from agent.models.llamacpp.server import (
    EmbeddedServer,
    running_server,
    shared_server,
    stop_shared_server,
)
from agent.models.llamacpp.settings import ServerSettings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a snippet in a fresh interpreter (a clean process: no server started yet)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, **env},
    )


def test_importing_building_and_loading_the_graph_module_start_nothing() -> None:
    result = run_python(
        """
        import runpy, sys
        import agent
        from agent import Chatbot, build_graph
        from agent.graph import builder
        build_graph()
        builder().compile()
        runpy.run_path("graphs/chatbot.py")
        Chatbot()
        from agent.models.embedded import running_server
        print("server:", running_server(), "xllamacpp loaded:", "xllamacpp" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "server: None xllamacpp loaded: False" in result.stdout


def test_server_listens_on_loopback_behind_a_key(embedded_server: EmbeddedServer) -> None:
    root = embedded_server.endpoint.root_url
    assert root.startswith("http://127.0.0.1:")
    assert httpx.get(f"{root}/v1/models").status_code == 401
    wrong = httpx.get(f"{root}/v1/models", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert len(embedded_server.settings.api_key) >= 24
    props = embedded_server.endpoint.props()
    assert props["total_slots"] == 4


def test_a_stopped_server_is_replaced_and_no_cached_model_points_at_it(
    embedded_server: EmbeddedServer,
) -> None:
    backend, settings = EmbeddedBackend(), Context(temperature=0.0, max_reply_tokens=4)
    old_model = backend.chat_model(settings)
    old_root = embedded_server.endpoint.root_url
    stop_shared_server()
    assert running_server() is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{old_root}/health")
    new_model = backend.chat_model(settings)
    assert new_model is not old_model
    reply = new_model.invoke([HumanMessage("Say hi.")])
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0
    assert shared_server().endpoint.root_url != old_root


def test_the_server_is_stopped_at_exit_without_noise() -> None:
    result = run_python(
        """
        import atexit
        from agent.models import embedded
        # registered first, so it runs after the module's own exit handler
        atexit.register(lambda: print("after exit:", embedded.running_server()))
        from agent import Context
        from agent.models import EmbeddedBackend
        model = EmbeddedBackend().chat_model(Context(temperature=0.0, max_reply_tokens=4))
        reply = model.invoke("Hi")
        print("root:", embedded.running_server().endpoint.root_url)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "after exit: None" in result.stdout
    # llama.cpp logs every load and request unless silenced
    assert "llama" not in result.stderr.lower()
    assert "load" not in result.stderr.lower()
    root = result.stdout.split("root: ")[1].split()[0]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{root}/health")


def test_a_file_that_is_not_a_model_fails_with_the_file_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("just some text")
    monkeypatch.setenv("AGENT_MODEL_PATH", str(bogus))
    with pytest.raises(EmbeddedModelError) as caught:
        ServerSettings.from_env()
    assert str(bogus) in str(caught.value)
    assert "AGENT_MODEL_PATH" in str(caught.value)


def test_a_missing_model_path_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_MODEL_PATH", str(tmp_path / "missing.gguf"))
    with pytest.raises(EmbeddedModelError, match="missing.gguf.*not a file"):
        default_model_path()


def test_a_taken_port_fails_with_the_port_and_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ServerSettings(model_path=default_model_path(), port=port, api_key="k")
        with pytest.raises(EmbeddedModelError) as caught:
            EmbeddedServer(settings)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "--port" in message


def test_the_server_gets_the_slots_and_context_it_is_given() -> None:
    settings = ServerSettings(
        model_path=default_model_path(), slots=2, context_per_slot=768, api_key="k"
    )
    server = EmbeddedServer(settings)
    try:
        props = server.endpoint.props()
        assert props["total_slots"] == 2
        assert props["default_generation_settings"]["n_ctx"] == 768
    finally:
        server.stop()


def test_only_the_operators_context_size_sizes_a_new_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_MAX_TOKENS", "1500")  # a per-run default: divides a slot, no more
    monkeypatch.setenv("AGENT_MAX_REPLY_TOKENS", "100")
    assert ServerSettings.from_env().context_per_slot == 2048
    monkeypatch.setenv("AGENT_CONTEXT_SIZE", "3000")
    assert ServerSettings.from_env().context_per_slot == 3000
    monkeypatch.setenv("AGENT_CONTEXT_SIZE", "100000")
    assert ServerSettings.from_env().context_per_slot == 8192  # what SmolLM2 was trained for


def test_threads_come_from_agent_threads_and_a_bad_value_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_THREADS", "3")
    assert ServerSettings.from_env().threads == 3
    monkeypatch.setenv("AGENT_THREADS", "0")
    with pytest.raises(SettingError, match="AGENT_THREADS"):
        ServerSettings.from_env()
    settings = ServerSettings(model_path=default_model_path(), slots=1, threads=1, api_key="k")
    server = EmbeddedServer(settings)  # one thread is enough to serve
    try:
        reply = (
            EmbeddedBackend(server.base_url, "k")
            .chat_model(Context(temperature=0.0, max_reply_tokens=4))
            .invoke("Hi")
        )
        assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0
    finally:
        server.stop()
