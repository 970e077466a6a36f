"""The embedded backend on the real llama.cpp server: caps, budgets, loop controls, cut replies,
the one model it serves, tools it cannot call, and a slot size no run can change."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool

from agent import Chatbot, Context
from agent.errors import (
    MessageTooLargeError,
    ReplyCapError,
    ToolsUnsupportedError,
    UnsupportedModelError,
)
from agent.models import EmbeddedBackend
from agent.models.cache import MODEL_CACHE_SIZE
from agent.models.embedded import EmbeddedServer
from agent.models.llamacpp.sampling import Repetition

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def stored(bot: Chatbot) -> list[BaseMessage]:
    """The thread's stored messages (the window, no system prompt)."""
    return list(bot.graph.get_state(bot.config).values.get("messages", []))


def latest_params(server: EmbeddedServer) -> dict[str, Any]:
    """The sampling parameters of the server's latest request, as llama.cpp applied them.

    Each slot reports its own last request; other slots keep earlier tests' requests, so the
    latest is the one with the highest task id.
    """
    headers = {"Authorization": f"Bearer {server.settings.api_key}"}
    slots = httpx.get(f"{server.endpoint.root_url}/slots", headers=headers).json()
    used = [slot for slot in slots if "params" in slot]
    assert used, "the request's slot reports its parameters"
    return dict(max(used, key=lambda slot: slot["id_task"])["params"])


# --- the reply cap and the window share one slot ------------------------------------------


def test_the_default_cap_is_the_windows_reserve_on_the_real_slot(
    embedded_server: EmbeddedServer,
) -> None:
    backend = EmbeddedBackend()
    slot = embedded_server.endpoint.slot_context()
    assert slot == 2048
    assert backend.reply_cap(Context()) == 512
    assert backend.budget(Context()) == slot - 512
    assert backend.budget(Context(max_reply_tokens=1000)) == slot - 1000
    assert backend.budget(Context(max_tokens=10**9)) == slot - 512  # only ever shrinks
    with pytest.raises(ReplyCapError, match="at most 1536"):
        backend.budget(Context(max_reply_tokens=10**9))


def test_a_reply_that_hits_the_cap_is_saved_marked_cut(
    embedded_server: EmbeddedServer,
) -> None:
    bot = Chatbot(temperature=0.0, max_reply_tokens=8)
    pieces = list(bot.stream("Write a long story about a dragon who learns to bake bread."))
    reply = stored(bot)[-1]
    assert isinstance(reply, AIMessage)
    assert reply.text == "".join(pieces)
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.response_metadata["cut"] is True
    assert reply.response_metadata["reply_tokens"] == 8


def test_a_reply_that_ends_by_itself_is_not_marked(embedded_server: EmbeddedServer) -> None:
    bot = Chatbot(temperature=0.0, max_reply_tokens=200)
    bot.say("Answer with one word: what colour is the sky on a clear day?")
    reply = stored(bot)[-1]
    assert reply.response_metadata["finish_reason"] == "stop"
    assert "cut" not in reply.response_metadata


# --- loop controls reach the server ---------------------------------------------------------


def test_every_request_carries_the_repetition_controls(
    embedded_server: EmbeddedServer,
) -> None:
    controls = Repetition()
    Chatbot(temperature=0.0, max_reply_tokens=4).say("Say hi.")
    params = latest_params(embedded_server)
    assert params["n_predict"] == 4  # this test's request
    assert params["repeat_penalty"] == pytest.approx(controls.repeat_penalty)
    assert params["repeat_last_n"] == controls.repeat_last_n
    assert params["dry_multiplier"] == pytest.approx(controls.dry_multiplier)
    assert params["dry_allowed_length"] == controls.dry_allowed_length
    assert params["dry_penalty_last_n"] == controls.dry_penalty_last_n


# --- the one model it serves --------------------------------------------------------------


def test_asking_the_embedded_backend_for_another_model_is_a_clear_error(
    embedded_server: EmbeddedServer,
) -> None:
    bot = Chatbot(model="gpt-4o", temperature=0.0, max_reply_tokens=8)
    with pytest.raises(UnsupportedModelError) as caught:
        bot.say("Hello?")
    message = str(caught.value)
    assert "'gpt-4o'" in message and "'smollm2'" in message
    assert "OPENAI_BASE_URL" in message and "AGENT_MODEL_PATH" in message
    assert stored(bot) == []  # nothing was saved


@pytest.mark.parametrize("name", ["smollm2", "SmolLM2", "SmolLM2-135M-Instruct.Q4_1"])
def test_the_embedded_models_own_names_are_accepted(
    name: str, embedded_server: EmbeddedServer
) -> None:
    assert Chatbot(model=name, temperature=0.0, max_reply_tokens=4).say("Hi").strip()


# --- tools the model cannot call --------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_tools_on_a_model_that_cannot_call_them_are_refused(
    embedded_server: EmbeddedServer,
) -> None:
    assert embedded_server.endpoint.props()["chat_template_caps"]["supports_tool_calls"] is False
    bot = Chatbot(tools=[add], temperature=0.0, max_reply_tokens=8)
    with pytest.raises(ToolsUnsupportedError) as caught:
        bot.say("What is 2 + 3? Use the add tool.")
    message = str(caught.value)
    assert "embedded llama.cpp" in message and "cannot call tools" in message
    assert "OpenAI" in message and "Ollama" in message
    assert stored(bot) == []
    assert Chatbot(temperature=0.0, max_reply_tokens=4).say("Hi").strip()  # no tools: fine


def test_the_tool_example_says_why_the_embedded_model_cannot_run_it(
    embedded_server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from examples.tool_assistant import main

    assert main(["What is 2 + 3?"]) == 1
    printed = capsys.readouterr()
    assert "cannot call tools" in printed.err and printed.out == ""


# --- the shared server is sized by the operator, never by a run ---------------------------------


def test_the_model_cache_stays_bounded_whatever_clients_choose(
    embedded_server: EmbeddedServer,
) -> None:
    backend = EmbeddedBackend()
    for step in range(3 * MODEL_CACHE_SIZE):
        backend.chat_model(Context(temperature=step / 50))
    assert len(backend._models) == MODEL_CACHE_SIZE


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run a snippet in a fresh interpreter (no server started yet)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_MAX")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )


def test_the_first_run_cannot_size_the_shared_server() -> None:
    result = run_python(
        """
        from agent import Chatbot
        from agent.errors import MessageTooLargeError
        from agent.models.embedded import running_server
        try:
            Chatbot(max_tokens=1, max_reply_tokens=4).say("Hi")  # the very first run
        except MessageTooLargeError as error:
            print("tiny window refused:", error.budget)
        print("slot:", running_server().settings.context_per_slot)
        print("next user:", bool(Chatbot(max_reply_tokens=4).say("Hello there").strip()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "tiny window refused: 1" in result.stdout
    assert "slot: 2048" in result.stdout
    assert "next user: True" in result.stdout


def test_a_huge_max_tokens_is_held_to_the_slot(embedded_server: EmbeddedServer) -> None:
    bot = Chatbot(max_tokens=10**9, max_reply_tokens=4, temperature=0.0)
    bot.say("Hi")
    before = stored(bot)
    with pytest.raises(MessageTooLargeError) as caught:
        bot.say("lorem ipsum " * 3000)  # refused before sending: the window is one slot
    assert caught.value.budget == embedded_server.endpoint.slot_context() - 4
    assert stored(bot) == before
