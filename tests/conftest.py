"""Test isolation: no real API keys, no user data dirs, no telemetry, whatever the machine has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ISOLATED_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AGENT_BASE_URL",
    "AGENT_BACKEND",
    "AGENT_MODEL",
    "AGENT_PERSONA",
    "AGENT_PERSONAS_DIR",
    "AGENT_DB_URL",
    "AGENT_MAX_TURNS",
    "AGENT_MAX_TOKENS",
    "AGENT_LOW_WATER",
    "AGENT_TEMPERATURE",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    # provider clients (`provider:model` names) read their own keys and endpoints
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_API_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "OLLAMA_HOST",
    "OLLAMA_API_KEY",
    "LANGSMITH_GATEWAY",
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Block real model calls and point every data directory at the test's tmp_path."""
    for name in ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENT_HOME", str(tmp_path / "agent-home"))
    # `make test` never uses the measurement model's side cache (bench/measurement_model.py)
    monkeypatch.setenv("AGENT_BENCH_CACHE", str(tmp_path / "bench-cache"))
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    monkeypatch.setenv("LANGGRAPH_CLI_NO_ANALYTICS", "1")
    monkeypatch.setenv("LANGGRAPH_NO_VERSION_CHECK", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
