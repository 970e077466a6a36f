"""Every provider path, for real: the real client libraries against local wire-protocol servers.

`AGENT_MODEL`-style names (`anthropic:...`, `ollama:...`, `google_genai:...`, `openai:...`) go
through `init_chat_model` to `langchain-anthropic`, `langchain-ollama`, `langchain-google-genai`
and `langchain-openai`, each pointed at a scripted server on 127.0.0.1
(tests/integration/provider_servers.py) through the provider's own base-URL variable. Each test
runs once per provider and checks both sides: what went over the wire and what the user got
(streamed pieces, saved reply, typed errors, a history left exactly as it was after a failure).
"""

from __future__ import annotations

import gc
import json
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot
from agent.cli import cli
from agent.cli.services import Services
from agent.errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelConnectionLostError,
    ModelError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelServerError,
    ModelUnreachableError,
)
from agent.models.embedded import running_server, stop_shared_server
from tests.integration.provider_servers import (
    REPLY,
    TOOL_ARGUMENTS,
    USAGE,
    AnthropicHandler,
    GeminiHandler,
    OllamaHandler,
    OpenAIHandler,
    ProtocolHandler,
    Received,
    ScriptedServer,
)

pytestmark = pytest.mark.integration

Turns = list[tuple[str, str]]  # (role, text) as the provider's request carries them


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def anthropic_turns(body: dict[str, Any]) -> Turns:
    def text(content: Any) -> str:
        return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)

    return [("system", body["system"])] + [
        (m["role"], text(m["content"])) for m in body["messages"]
    ]


def ollama_turns(body: dict[str, Any]) -> Turns:
    return [(m["role"], m.get("content", "")) for m in body["messages"]]


def gemini_turns(body: dict[str, Any]) -> Turns:
    system = "".join(part["text"] for part in body["systemInstruction"]["parts"])
    roles = {"user": "user", "model": "assistant"}
    return [("system", system)] + [
        (roles[c["role"]], "".join(p.get("text", "") for p in c["parts"])) for c in body["contents"]
    ]


def openai_turns(body: dict[str, Any]) -> Turns:
    def text(content: Any) -> str:
        if content is None or isinstance(content, str):
            return content or ""
        return "".join(part.get("text", "") for part in content)

    return [(m["role"], text(m.get("content"))) for m in body["messages"]]


def anthropic_tool_round(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The tool call the client sent back in the history, and the result it carried."""
    blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    (call,) = [b for b in blocks if b["type"] == "tool_use"]
    (result,) = [b for b in blocks if b["type"] == "tool_result"]
    assert result["tool_use_id"] == call["id"] == "toolu_0001"
    return {"name": call["name"], "args": call["input"]}, str(result["content"])


def ollama_tool_round(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    (call,) = [c["function"] for m in body["messages"] for c in m.get("tool_calls") or []]
    (result,) = [m for m in body["messages"] if m["role"] == "tool"]
    return {"name": call["name"], "args": call["arguments"]}, result["content"]


def gemini_tool_round(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    parts = [(c["role"], p) for c in body["contents"] for p in c["parts"]]
    (call,) = [p["functionCall"] for role, p in parts if role == "model" and "functionCall" in p]
    (result,) = [p["functionResponse"] for _, p in parts if "functionResponse" in p]
    assert result["name"] == "add"
    return {"name": call["name"], "args": call["args"]}, json.dumps(result["response"])


def openai_tool_round(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    (call,) = [c for m in body["messages"] for c in m.get("tool_calls") or []]
    (result,) = [m for m in body["messages"] if m["role"] == "tool"]
    assert result["tool_call_id"] == call["id"] and call["type"] == "function"
    function = call["function"]
    return {"name": function["name"], "args": json.loads(function["arguments"])}, result["content"]


@dataclass(frozen=True)
class Wire:
    """One provider: its server, how the agent is pointed at it, how to read its requests."""

    name: str
    handler: type[ProtocolHandler]
    model: str
    env: dict[str, str]  # values may use {url}
    url_env: str
    turns: Callable[[dict[str, Any]], Turns]
    tool_round: Callable[[dict[str, Any]], tuple[dict[str, Any], str]]
    finish: tuple[str, str]  # response_metadata key and value of a length-cut reply
    key_env: str
    label: str
    reply_cap: Callable[[dict[str, Any]], Any]  # the reply-token cap a request carries
    streamed: Callable[[Received], bool]  # whether the client asked for a streamed reply


def streamed_by_body(request: Received) -> bool:
    return bool(request.body["stream"])


WIRES = [
    Wire("anthropic", AnthropicHandler, "anthropic:claude-scripted",
         {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": "{url}"}, "ANTHROPIC_BASE_URL",
         anthropic_turns, anthropic_tool_round, ("stop_reason", "max_tokens"), "ANTHROPIC_API_KEY",
         "Anthropic", lambda body: body["max_tokens"], streamed_by_body),
    Wire("ollama", OllamaHandler, "ollama:qwen2.5:1.5b",
         {"OLLAMA_HOST": "{url}", "OLLAMA_API_KEY": "ollama-test-key"}, "OLLAMA_HOST",
         ollama_turns, ollama_tool_round, ("done_reason", "length"), "OLLAMA_API_KEY", "Ollama",
         lambda body: body["options"]["num_predict"], streamed_by_body),
    Wire("gemini", GeminiHandler, "google_genai:gemini-scripted",
         {"GOOGLE_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": "{url}"},
         "GOOGLE_GEMINI_BASE_URL", gemini_turns, gemini_tool_round,
         ("finish_reason", "MAX_TOKENS"), "GOOGLE_API_KEY", "Google Gemini",
         lambda body: body["generationConfig"]["maxOutputTokens"],
         lambda request: "?alt=sse" in request.path),
    Wire("openai", OpenAIHandler, "openai:gpt-4o-mini",
         {"OPENAI_API_KEY": "sk-openai-test", "OPENAI_BASE_URL": "{url}/v1"}, "OPENAI_BASE_URL",
         openai_turns, openai_tool_round, ("finish_reason", "length"), "OPENAI_API_KEY", "OpenAI",
         lambda body: body["max_completion_tokens"], streamed_by_body),
]  # fmt: skip


@dataclass
class Setup:
    wire: Wire
    server: ScriptedServer

    def bot(self, **kwargs: Any) -> Chatbot:
        return Chatbot(model=self.wire.model, checkpointer=InMemorySaver(), **kwargs)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [request.body for request in self.server.requests]


@pytest.fixture(params=WIRES, ids=[wire.name for wire in WIRES])
def provider(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    wire: Wire = request.param
    with ScriptedServer(wire.handler) as server:
        for name, value in wire.env.items():
            monkeypatch.setenv(name, value.format(url=server.url))
        yield Setup(wire, server)
    forget_clients()


def forget_clients() -> None:
    """Let go of a test's clients (they point at its ports) and close their idle sockets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def stored(bot: Chatbot) -> list[tuple[str, str, str]]:
    """The thread as the checkpointer holds it, comparable across a failed turn."""
    messages: list[BaseMessage] = bot.graph.get_state(bot.config).values.get("messages", [])
    return [(str(m.id), m.type, str(m.text)) for m in messages]


def failing_turn(bot: Chatbot, error: type[ModelError]) -> ModelError:
    """Run a turn that must fail with `error`, checking the thread is left exactly as it was."""
    before = stored(bot)
    with pytest.raises(error) as caught:
        bot.say("Are you there?")
    assert stored(bot) == before
    return caught.value


# --- what works ------------------------------------------------------------------------------


def test_a_reply_streams_piece_by_piece_and_is_saved_with_usage(provider: Setup) -> None:
    bot = provider.bot()
    assert list(bot.stream("Hi")) == REPLY
    reply = bot.history()[-1]
    assert reply.type == "ai" and reply.text == "".join(REPLY)
    assert reply.usage_metadata is not None
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == USAGE
    (request,) = provider.server.requests
    key = provider.wire.env[provider.wire.key_env]
    assert any(key in value for value in request.headers.values())
    assert provider.wire.streamed(request)
    system, user = provider.wire.turns(request.body)
    assert system[0] == "system" and "helpful" in system[1]  # the persona, where the API wants it
    assert user == ("user", "Hi")


def test_the_history_goes_over_the_wire_in_order(provider: Setup) -> None:
    bot = provider.bot(persona="tutor")
    bot.say("First question")
    bot.say("Second question")
    turns = provider.wire.turns(provider.bodies[-1])
    assert [role for role, _ in turns] == ["system", "user", "assistant", "user"]
    assert [text for _, text in turns[1:]] == ["First question", "Hello there.", "Second question"]
    assert "tutor" in turns[0][1].lower()


def test_a_tool_call_round_trips(provider: Setup) -> None:
    provider.server.answers = ["tool", "tool"]
    bot = provider.bot(tools=[add])
    reply = bot.say("What is 2 + 40?")
    first, second = provider.bodies
    call, result = provider.wire.tool_round(second)
    assert call == {"name": "add", "args": TOOL_ARGUMENTS}
    assert "42" in result
    assert reply == f"The tool returned {result}."
    assert "add" in json.dumps(first["tools"])  # offered in the provider's own tool format
    types = [m.type for m in bot.history()]
    assert types[-4:] == ["human", "ai", "tool", "ai"]
    assert isinstance(bot.history()[-2], ToolMessage)


def test_a_length_cut_reply_is_marked_cut_and_can_be_continued(provider: Setup) -> None:
    provider.server.answers = ["length"]
    bot = provider.bot(max_reply_tokens=4)
    assert bot.say("Tell me everything") == "".join(REPLY)
    key, value = provider.wire.finish
    metadata = bot.history()[-1].response_metadata
    assert metadata[key] == value  # the provider's own words stay
    assert metadata["cut"] is True and metadata["reply_tokens"] == USAGE[1]  # the shared rule
    assert bot.last_turn is not None and bot.last_turn.cut
    assert bot.continue_reply() == "".join(REPLY)  # the cut reply goes back to be continued
    turns = provider.wire.turns(provider.bodies[-1])
    assert turns[-3:-1] == [("user", "Tell me everything"), ("assistant", "".join(REPLY))]
    assert turns[-1][0] == "user"
    assert provider.wire.reply_cap(provider.bodies[0]) == 4


def test_stop_ends_the_reply_and_saves_what_was_shown(provider: Setup) -> None:
    bot = provider.bot()
    provider.server.answers = ["hold"]  # the rest of the reply comes only after stop()
    shown = []
    for piece in bot.stream("Hi"):
        shown.append(piece)
        bot.stop()
        provider.server.release.set()
    assert shown == REPLY[:1]
    reply = bot.history()[-1]
    assert reply.text == REPLY[0] and reply.response_metadata.get("interrupted") is True
    assert bot.say("Go on") == "".join(REPLY)  # the thread is still valid


async def test_the_async_path_streams_and_retries_too(provider: Setup) -> None:
    bot = provider.bot()
    provider.server.answers = ["429"]
    assert [piece async for piece in bot.astream("Hi")] == REPLY
    assert len(provider.server.requests) == 2  # the rate limit was retried
    provider.server.answers = ["401"]
    with pytest.raises(ModelAuthError):
        await bot.asay("Again")
    assert [m.text for m in bot.history()][-2:] == ["Hi", "".join(REPLY)]


# --- what fails, typed, with the thread left as it was ----------------------------------------


@pytest.mark.parametrize(
    ("answers", "error", "requests"),
    [
        (["401"], ModelAuthError, 1),
        (["404"], ModelNotFoundError, 1),
        (["429", "429", "429"], ModelRateLimitError, 3),  # first try + 2 retries
        (["500", "500", "500"], ModelServerError, 3),
        (["overflow"], ContextOverflowError, 1),
    ],
    ids=["401", "404", "429", "500", "overflow"],
)
def test_http_failures_are_typed_retried_when_transient_and_roll_back(
    provider: Setup, answers: list[str], error: type[ModelError], requests: int
) -> None:
    bot = provider.bot()
    bot.say("First turn")
    provider.server.answers = list(answers)
    failure = failing_turn(bot, error)
    assert len(provider.server.requests) == 1 + requests
    assert provider.server.url in str(failure) or provider.wire.name == "gemini"
    if error is ModelAuthError:
        assert provider.wire.key_env in str(failure)
    assert bot.say("Again") == "".join(REPLY)


def test_a_transient_rate_limit_is_absorbed_by_the_retry(provider: Setup) -> None:
    provider.server.answers = ["429"]
    assert provider.bot().say("Hi") == "".join(REPLY)
    assert len(provider.server.requests) == 2


def test_a_connection_dropped_mid_reply_rolls_the_turn_back(provider: Setup) -> None:
    bot = provider.bot()
    bot.say("First turn")
    before = stored(bot)
    provider.server.answers = ["drop"]
    shown: list[str] = []
    with pytest.raises(ModelConnectionLostError):
        for piece in bot.stream("Second turn"):
            shown.append(piece)
    assert shown == REPLY[:2]  # the user saw part of a reply before the drop
    assert stored(bot) == before
    assert bot.say("Third turn") == "".join(REPLY)


def test_an_error_inside_a_started_stream_is_typed_and_rolls_back(provider: Setup) -> None:
    bot = provider.bot()
    bot.say("First turn")
    before = stored(bot)
    provider.server.answers = ["stream-error"]
    with pytest.raises(ModelServerError):
        list(bot.stream("Second turn"))
    assert stored(bot) == before


def test_an_unreachable_provider_names_its_url_variable(
    provider: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(provider.wire.url_env, f"http://127.0.0.1:{port}")
    failure = failing_turn(provider.bot(), ModelUnreachableError)
    assert provider.wire.url_env in str(failure)


def test_one_thread_moves_between_providers_with_its_tool_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """History written by one provider's client (its content blocks, tool ids) is read by all."""
    servers = {wire.name: ScriptedServer(wire.handler) for wire in WIRES}
    with ExitStack() as running:
        for server in servers.values():
            running.enter_context(server)
        for wire in WIRES:
            for name, value in wire.env.items():
                monkeypatch.setenv(name, value.format(url=servers[wire.name].url))
        saver = InMemorySaver()
        servers["anthropic"].answers = ["tool", "tool"]
        first = Chatbot(model=WIRES[0].model, tools=[add], checkpointer=saver)
        assert first.say("What is 2 + 40?").startswith("The tool returned")
        for wire in WIRES[1:]:
            moved = Chatbot(model=wire.model, tools=[add], thread_id=first.thread_id,
                            checkpointer=saver)  # fmt: skip
            assert moved.say(f"Now on {wire.name}") == "".join(REPLY)
            call, result = wire.tool_round(servers[wire.name].requests[-1].body)
            assert call == {"name": "add", "args": TOOL_ARGUMENTS} and "42" in result
            roles = [role for role, _ in wire.turns(servers[wire.name].requests[-1].body)]
            assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "user"
    forget_clients()


def test_the_cli_talks_to_a_provider_named_by_model_and_loads_no_local_model(
    provider: Setup,
) -> None:
    stop_shared_server()  # started by earlier tests in this process (the next one restarts it)
    runner = CliRunner()
    answered = runner.invoke(cli, ["ask", "-m", provider.wire.model, "Hi"], obj=Services())
    assert answered.exit_code == 0, answered.output
    assert "".join(REPLY) in answered.stdout
    assert running_server() is None  # the embedded SmolLM2 was not started for nothing
    provider.server.answers = ["401"]
    refused = runner.invoke(cli, ["ask", "-m", provider.wire.model, "Hi"], obj=Services())
    assert refused.exit_code == 1
    assert "rejected the API key" in refused.stderr and provider.wire.key_env in refused.stderr
    assert Services().backend_label(provider.wire.model).startswith(provider.wire.label)
