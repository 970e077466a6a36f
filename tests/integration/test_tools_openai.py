"""The real tool path: ChatOpenAI against a scripted OpenAI-compatible server on a free port.

The server answers a user message with a tool call and a tool result with a final answer, over
plain JSON or SSE streaming, and records every request, so the tests check what went over the
wire: the tools offered, the assistant's tool call and the tool result with the right id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from agent import Chatbot, build_graph

pytestmark = pytest.mark.integration

MODEL = "scripted-tool-model"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"exploded: {reason}")


class ScriptedOpenAI(BaseHTTPRequestHandler):
    """`/v1/chat/completions`: a tool call for a user message, an answer for a tool result."""

    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        message = self.server.reply_to(body)
        if body.get("stream"):
            self._stream(message, body)
        else:
            self._json(message)

    def _json(self, message: dict[str, Any]) -> None:
        data = json.dumps(
            {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "created": 0,
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": finish(message)}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, message: dict[str, Any], body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for delta in deltas(message):
            self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish(message)}]})
        if body.get("stream_options", {}).get("include_usage"):
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            self._event({"choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, chunk: dict[str, Any]) -> None:
        chunk = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
            **chunk,
        }
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()


def finish(message: dict[str, Any]) -> str:
    return "tool_calls" if message.get("tool_calls") else "stop"


def deltas(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The message as OpenAI streams it: role first, text in pieces, tool arguments in pieces."""
    yield {"role": "assistant", "content": ""}
    text = message.get("content") or ""
    for start in range(0, len(text), 5):
        yield {"content": text[start : start + 5]}
    for index, call in enumerate(message.get("tool_calls", [])):
        function = {"name": call["function"]["name"], "arguments": ""}
        yield {
            "tool_calls": [
                {"index": index, "id": call["id"], "type": "function", "function": function}
            ]
        }
        arguments = call["function"]["arguments"]
        for start in range(0, len(arguments), 4):
            piece = {"arguments": arguments[start : start + 4]}
            yield {"tool_calls": [{"index": index, "function": piece}]}


class ScriptedServer(ThreadingHTTPServer):
    """Decides replies from the last message it is sent; numbers its tool calls."""

    def __init__(self, tool_name: str, arguments: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedOpenAI)
        self.requests: list[dict[str, Any]] = []
        self.tool_name, self.arguments = tool_name, arguments
        self.calls = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def reply_to(self, body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return {"role": "assistant", "content": f"The tool returned {last['content']}."}
        self.calls += 1
        call = {
            "id": f"call_{self.calls:04d}",
            "type": "function",
            "function": {"name": self.tool_name, "arguments": json.dumps(self.arguments)},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer("add", {"a": 2, "b": 40})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def chat_model(server: ScriptedServer) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=server.base_url, api_key="test-key", max_retries=0)  # type: ignore[arg-type]


def assert_second_request_carries_the_tool_round(server: ScriptedServer, result: str) -> None:
    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["add"]
    assert first["messages"][0]["role"] == "system"
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    call = second["messages"][2]["tool_calls"][0]
    assert call["id"] == "call_0001" and call["function"]["name"] == "add"
    assert json.loads(call["function"]["arguments"]) == {"a": 2, "b": 40}
    tool_result = second["messages"][3]
    assert tool_result["tool_call_id"] == "call_0001" and tool_result["content"] == result


def test_streaming_sse_tool_call_then_answer(scripted: ScriptedServer) -> None:
    bot = Chatbot(chat_model=chat_model(scripted), tools=[add], checkpointer=InMemorySaver())
    deltas_seen = list(bot.stream("What is 2 + 40?"))
    assert "".join(deltas_seen) == "The tool returned 42."
    assert len(deltas_seen) > 1  # it really streamed
    assert all(request["stream"] is True for request in scripted.requests)
    assert_second_request_carries_the_tool_round(scripted, "42")
    assert [m.type for m in bot.history()] == ["system", "human", "ai", "tool", "ai"]


def test_non_streaming_tool_call_then_answer(scripted: ScriptedServer) -> None:
    graph = build_graph(chat_model=chat_model(scripted), tools=[add], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "plain"}}
    result = graph.invoke({"messages": [HumanMessage("What is 2 + 40?")]}, config)
    assert result["messages"][-1].content == "The tool returned 42."
    assert not any(request.get("stream") for request in scripted.requests)
    assert_second_request_carries_the_tool_round(scripted, "42")


def test_the_configured_backend_calls_tools_through_an_openai_compatible_url(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", scripted.base_url)
    bot = Chatbot(tools=[add], checkpointer=InMemorySaver())  # the project's own ChatOpenAI
    assert bot.say("What is 2 + 40?") == "The tool returned 42."
    assert_second_request_carries_the_tool_round(scripted, "42")


def test_a_failing_tool_goes_back_over_the_wire_as_an_error_result(
    scripted: ScriptedServer,
) -> None:
    scripted.tool_name, scripted.arguments = "explode", {"reason": "on purpose"}
    bot = Chatbot(chat_model=chat_model(scripted), tools=[explode], checkpointer=InMemorySaver())
    reply = bot.say("Try the tool")
    sent = scripted.requests[1]["messages"][-1]
    assert sent["role"] == "tool" and sent["tool_call_id"] == "call_0001"
    assert "exploded: on purpose" in sent["content"] and "Error" in sent["content"]
    assert reply == f"The tool returned {sent['content']}."
    stored = bot.graph.get_state(bot.config).values["messages"]
    assert isinstance(stored[2], ToolMessage) and stored[2].status == "error"
    assert bot.say("Again").startswith("The tool returned")  # the thread is still valid
    assert [m["role"] for m in scripted.requests[-1]["messages"]][-4:] == [
        "assistant",
        "user",
        "assistant",
        "tool",
    ]
