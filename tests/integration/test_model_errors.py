"""Model failures against a real local HTTP server: typed errors, retries, history left intact."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from agent import Chatbot
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

pytestmark = pytest.mark.integration

REPLY = ["Hel", "lo ", "the", "re."]


@dataclass
class Script:
    """What the fake OpenAI-compatible server answers, one entry per request ('ok' when empty)."""

    answers: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


def sse(piece: dict[str, Any]) -> bytes:
    """One server-sent event carrying a chat-completion chunk."""
    return f"data: {json.dumps(piece)}\n\n".encode()


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat.completion.chunk the way OpenAI streams it."""
    delta = {"role": "assistant", "content": content} if content is not None else {}
    choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": choices, **extra}  # fmt: skip


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    """An OpenAI-style error body."""
    return json.dumps({"error": {"message": message, "type": "error", "code": code}}).encode()


ERRORS = {
    "401": (401, error_body(401, "Incorrect API key provided.", "invalid_api_key")),
    "404": (404, error_body(404, "The model `nope` does not exist.", "model_not_found")),
    "429": (429, error_body(429, "Rate limit reached.", "rate_limit_exceeded")),
    "500": (500, error_body(500, "The server had an error.")),
    "overflow": (
        400,
        error_body(
            400, "This model's maximum context length is 128 tokens.", "context_length_exceeded"
        ),
    ),
}


class Handler(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions as scripted."""

    protocol_version = "HTTP/1.1"
    script: Script

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.script.requests.append(body)
        answer = self.script.answers.pop(0) if self.script.answers else "ok"
        if answer in ERRORS:
            status, payload = ERRORS[answer]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("retry-after-ms", "10")  # keep the client's backoff short
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [sse(chunk(piece)) for piece in REPLY]
        if answer == "drop":
            for event in events[:2]:
                self.write_chunk(event)
            self.close_connection = True  # hang up without the final chunk
            return
        usage = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
        events += [sse(chunk(finish="stop")), sse({**chunk(), "choices": [], "usage": usage})]
        for event in [*events, b"data: [DONE]\n\n"]:
            self.write_chunk(event)
        self.wfile.write(b"0\r\n\r\n")

    def write_chunk(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk and flush it to the client."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Script]:
    """A real HTTP server on a free port, with the agent pointed at it as a compatible backend."""
    script = Script()
    handler = type("ScriptedHandler", (Handler,), {"script": script})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    yield script
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def history(bot: Chatbot) -> list[tuple[str, str, str]]:
    """The stored thread, as comparable tuples."""
    messages: list[BaseMessage] = bot.graph.get_state(bot.config).values.get("messages", [])
    return [(str(m.id), m.type, str(m.text)) for m in messages]


def failing_turn(bot: Chatbot, error: type[ModelError]) -> ModelError:
    """Run a turn that must fail with `error`, checking the thread is left exactly as it was."""
    before = history(bot)
    with pytest.raises(error) as caught:
        bot.say("Are you there?")
    assert history(bot) == before
    return caught.value


def test_a_working_server_streams_and_records_usage(server: Script) -> None:
    bot = Chatbot()
    assert list(bot.stream("Hi")) == REPLY
    reply = bot.graph.get_state(bot.config).values["messages"][-1]
    assert reply.usage_metadata["input_tokens"] == 7
    assert reply.usage_metadata["output_tokens"] == 4
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["model"] == "default"


def test_bad_key_is_not_retried(server: Script) -> None:
    server.answers = ["401"]
    bot = Chatbot()
    error = failing_turn(bot, ModelAuthError)
    assert len(server.requests) == 1
    message = str(error)
    assert "OpenAI-compatible server at http://127.0.0.1:" in message
    assert "OPENAI_API_KEY" in message
    assert "Incorrect API key" in message


def test_unknown_model_is_not_retried(server: Script) -> None:
    server.answers = ["404"]
    error = failing_turn(Chatbot(model="nope"), ModelNotFoundError)
    assert len(server.requests) == 1
    assert server.requests[0]["model"] == "nope"
    assert "AGENT_MODEL" in str(error)


def test_rate_limit_is_retried_with_backoff_then_reported(server: Script) -> None:
    server.answers = ["429", "429", "429"]
    error = failing_turn(Chatbot(), ModelRateLimitError)
    assert len(server.requests) == 3  # first try + 2 retries
    assert "Wait" in str(error)


def test_a_transient_rate_limit_is_absorbed_by_the_retry(server: Script) -> None:
    server.answers = ["429"]
    assert Chatbot().say("Hi") == "".join(REPLY)
    assert len(server.requests) == 2


def test_server_errors_are_retried_then_reported_and_history_is_kept(server: Script) -> None:
    bot = Chatbot()
    bot.say("First turn")
    server.answers = ["500", "500", "500"]
    failing_turn(bot, ModelServerError)
    assert len(server.requests) == 4
    assert bot.say("Again") == "".join(REPLY)


def test_context_overflow_is_typed_and_not_retried(server: Script) -> None:
    server.answers = ["overflow"]
    error = failing_turn(Chatbot(), ContextOverflowError)
    assert len(server.requests) == 1
    assert "AGENT_MAX_TOKENS" in str(error)


def test_a_connection_dropped_mid_stream_rolls_the_turn_back(server: Script) -> None:
    bot = Chatbot()
    bot.say("First turn")
    before = history(bot)
    server.answers = ["drop"]
    received: list[str] = []
    with pytest.raises(ModelConnectionLostError) as caught:
        for piece in bot.stream("Second turn"):
            received.append(piece)
    assert received == REPLY[:2]  # the user saw part of a reply before the drop
    assert history(bot) == before
    assert "send the message again" in str(caught.value)
    assert bot.say("Third turn") == "".join(REPLY)


def test_an_unreachable_endpoint_names_the_url_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    error = failing_turn(Chatbot(), ModelUnreachableError)
    assert url in str(error)
    assert "OPENAI_BASE_URL" in str(error)
