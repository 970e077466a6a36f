"""Local scripted HTTP servers that speak each provider's real wire protocol.

- Anthropic Messages API: `POST /v1/messages`, server-sent events (`event:` + `data:` lines).
- Ollama chat API: `POST /api/chat`, newline-delimited JSON, one object per token.
- Google Gemini API: `POST /{version}/models/{model}:streamGenerateContent?alt=sse` (SSE `data:`
  lines) and `:generateContent` (one JSON body).
- OpenAI Chat Completions API: `POST /v1/chat/completions`, SSE `data:` lines carrying
  `chat.completion.chunk` objects, a usage-only chunk, then `data: [DONE]`.

Each server answers one scripted entry per request (`"ok"` when the script is empty) and records
what it received, so tests check both sides of the wire: what the client sent (system prompt
placement, history order, tool calls) and what the user got. The real client libraries talk to
them; nothing in the client is replaced.

Script entries: "ok" (stream REPLY), "tool" (call the `add` tool unless the last message is a
tool result, then answer with it), "length" (REPLY cut by the length limit), "drop" (hang up
after two pieces), "stream-error" (an error inside a stream that started), "401", "404", "429",
"500", "overflow" (the provider's context-overflow error), "hold" (send one piece, then wait for
`server.release` before the rest: a reply still coming while the test acts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

REPLY = ["Hel", "lo ", "the", "re."]
TOOL_ARGUMENTS = {"a": 2, "b": 40}
USAGE = (7, 4)  # input tokens, output tokens every reply reports


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ScriptedServer(ThreadingHTTPServer):
    """A protocol server on a free loopback port, answering from `answers` and recording."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.answers: list[str] = []
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_answer(self) -> str:
        return self.answers.pop(0) if self.answers else "ok"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


class ProtocolHandler(BaseHTTPRequestHandler):
    """What every provider server shares: read and record the request, write chunked bodies."""

    protocol_version = "HTTP/1.1"
    server: ScriptedServer
    errors: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.requests.append(Received(self.path, headers, body))
        answer = self.server.next_answer()
        if answer in self.errors:
            status, payload = self.errors[answer]
            self.send_json(status, payload, {"retry-after-ms": "10", "retry-after": "0"})
            return
        self.answer(answer, body)

    def answer(self, answer: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        """Write one HTTP/1.1 chunk and flush it, so the client sees each piece on its own."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def hold(self, number: int, answer: str) -> None:
        """For "hold": after the first piece, wait until the test releases the rest."""
        if number == 1 and answer == "hold":
            self.server.release.wait(timeout=60)

    def hang_up(self) -> None:
        """Close the connection in the middle of the body (no terminating chunk)."""
        self.close_connection = True

    def broke_off(self, number: int, answer: str, send_error: Callable[[], None]) -> bool:
        """Before piece `number`: hold, or end a started stream early as scripted.

        "drop" hangs up and "stream-error" sends the provider's error event (`send_error`),
        both at the third piece; True when the stream ended here.
        """
        self.hold(number, answer)
        if number != 2 or answer not in ("drop", "stream-error"):
            return False
        if answer == "drop":
            self.hang_up()
            return True
        send_error()
        self.end_stream()
        return True


def pieces_for(answer: str, last_is_tool_result: bool, tool_result: str) -> list[str]:
    """The text pieces of a scripted reply."""
    if answer == "tool" and last_is_tool_result:
        return ["The tool ", "returned ", f"{tool_result}."]
    return REPLY


# --- Anthropic Messages API ------------------------------------------------------------------


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


class AnthropicHandler(ProtocolHandler):
    """`POST /v1/messages` as Anthropic streams it (and answers it without `stream`)."""

    errors: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {
        "401": (401, anthropic_error("authentication_error", "invalid x-api-key")),
        "404": (404, anthropic_error("not_found_error", "model: claude-nope")),
        "429": (429, anthropic_error("rate_limit_error", "Number of requests has exceeded")),
        "500": (500, anthropic_error("api_error", "Internal server error")),
        "overflow": (
            400,
            anthropic_error("invalid_request_error", "prompt is too long: 210000 > 200000"),
        ),
    }

    def answer(self, answer: str, body: dict[str, Any]) -> None:
        last = body["messages"][-1]
        results = [
            block
            for block in (last["content"] if isinstance(last["content"], list) else [])
            if block.get("type") == "tool_result"
        ]
        calls_tool = answer == "tool" and not results
        result_text = str(results[0]["content"]) if results else ""
        if isinstance(results[0]["content"] if results else None, list):
            result_text = "".join(part.get("text", "") for part in results[0]["content"])
        pieces = [] if calls_tool else pieces_for(answer, bool(results), result_text)
        stop = "tool_use" if calls_tool else "max_tokens" if answer == "length" else "end_turn"
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": "".join(pieces)}]
            if calls_tool:
                content = [self.tool_use_block(TOOL_ARGUMENTS)]
            self.send_json(200, self.message(body, content, stop), {})
            return
        self.start_stream("text/event-stream")
        self.event("message_start", {"type": "message_start", "message": self.message(body, [])})
        if calls_tool:
            self.tool_use_events()
        else:
            self.text_events(pieces, answer)
            if answer in ("drop", "stream-error"):
                return
        usage = {"input_tokens": USAGE[0], "output_tokens": USAGE[1]}  # cumulative, as sent
        delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
        self.event("message_delta", {**delta, "usage": usage})
        self.event("message_stop", {"type": "message_stop"})
        self.end_stream()

    def message(
        self, body: dict[str, Any], content: list[dict[str, Any]], stop: str | None = None
    ) -> dict[str, Any]:
        usage = {"input_tokens": USAGE[0], "output_tokens": 1 if stop is None else USAGE[1]}
        return {"id": "msg_scripted", "type": "message", "role": "assistant",
                "model": body["model"], "content": content, "stop_reason": stop,
                "stop_sequence": None, "usage": usage}  # fmt: skip

    def tool_use_block(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"type": "tool_use", "id": "toolu_0001", "name": "add", "input": arguments}

    def text_events(self, pieces: list[str], answer: str) -> None:
        block = {"type": "text", "text": ""}
        self.event("content_block_start",
                   {"type": "content_block_start", "index": 0, "content_block": block})  # fmt: skip
        self.event("ping", {"type": "ping"})
        for number, piece in enumerate(pieces):
            if self.broke_off(
                number,
                answer,
                lambda: self.event("error", anthropic_error("overloaded_error", "Overloaded")),
            ):
                return
            delta = {"type": "text_delta", "text": piece}
            self.event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": delta})  # fmt: skip
        self.event("content_block_stop", {"type": "content_block_stop", "index": 0})

    def tool_use_events(self) -> None:
        block = {**self.tool_use_block({}), "input": {}}
        self.event("content_block_start",
                   {"type": "content_block_start", "index": 0, "content_block": block})  # fmt: skip
        arguments = json.dumps(TOOL_ARGUMENTS)
        for start in range(0, len(arguments), 5):
            delta = {"type": "input_json_delta", "partial_json": arguments[start : start + 5]}
            self.event("content_block_delta",
                       {"type": "content_block_delta", "index": 0, "delta": delta})  # fmt: skip
        self.event("content_block_stop", {"type": "content_block_stop", "index": 0})

    def event(self, name: str, data: dict[str, Any]) -> None:
        self.write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())


# --- Ollama chat API -------------------------------------------------------------------------


class OllamaHandler(ProtocolHandler):
    """`POST /api/chat` as Ollama streams it: one JSON object per line, `done` on the last."""

    errors: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {
        "401": (401, {"error": "unauthorized"}),
        "404": (404, {"error": 'model "nope" not found, try pulling it first'}),
        "429": (429, {"error": "too many requests"}),
        "500": (500, {"error": "llama runner process has terminated: exit status 2"}),
        # Ollama itself truncates long prompts; servers in front of it (and its cloud) refuse.
        "overflow": (400, {"error": "the input length exceeds the context length"}),
    }

    def answer(self, answer: str, body: dict[str, Any]) -> None:
        last = body["messages"][-1]
        last_is_result = last["role"] == "tool"
        calls_tool = answer == "tool" and not last_is_result
        pieces = [] if calls_tool else pieces_for(answer, last_is_result, last["content"])
        done_reason = "length" if answer == "length" else "stop"
        if not body.get("stream", True):
            raise AssertionError("ChatOllama always streams")
        self.start_stream("application/x-ndjson")
        for number, piece in enumerate(pieces):
            if self.broke_off(
                number,
                answer,
                lambda: self.line({"error": "an error was encountered while running the model"}),
            ):
                return
            self.line(self.part({"role": "assistant", "content": piece}, done=False))
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        if calls_tool:
            call = {"function": {"name": "add", "arguments": TOOL_ARGUMENTS}}
            self.line(self.part({**message, "tool_calls": [call]}, done=False))
        final = self.part(message, done=True)
        final.update(done_reason=done_reason, total_duration=1000, load_duration=10,
                     prompt_eval_count=USAGE[0], prompt_eval_duration=100,
                     eval_count=USAGE[1], eval_duration=400)  # fmt: skip
        self.line(final)
        self.end_stream()

    def part(self, message: dict[str, Any], *, done: bool) -> dict[str, Any]:
        model = self.server.requests[-1].body["model"]
        return {"model": model, "created_at": "2026-01-01T00:00:00Z", "message": message,
                "done": done}  # fmt: skip

    def line(self, data: dict[str, Any]) -> None:
        self.write_chunk(json.dumps(data).encode() + b"\n")


# --- Google Gemini API -----------------------------------------------------------------------


def gemini_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class GeminiHandler(ProtocolHandler):
    """`POST /{version}/models/{model}:streamGenerateContent?alt=sse` and `:generateContent`."""

    errors: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {
        "401": (401, gemini_error(401, "UNAUTHENTICATED", "API key not valid.")),
        "404": (404, gemini_error(404, "NOT_FOUND", "models/nope is not found for API version")),
        "429": (429, gemini_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted")),
        "500": (500, gemini_error(500, "INTERNAL", "An internal error has occurred.")),
        "overflow": (
            400,
            gemini_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens "
                "allowed (1048576).",
            ),
        ),
    }

    def answer(self, answer: str, body: dict[str, Any]) -> None:
        last = body["contents"][-1]
        results = [part["functionResponse"] for part in last["parts"] if "functionResponse" in part]
        calls_tool = answer == "tool" and not results
        result_text = json.dumps(results[0]["response"]) if results else ""
        pieces = [] if calls_tool else pieces_for(answer, bool(results), result_text)
        finish = "MAX_TOKENS" if answer == "length" else "STOP"
        call_part = {"functionCall": {"name": "add", "args": TOOL_ARGUMENTS}}
        if not urlsplit(self.path).path.endswith(":streamGenerateContent"):
            parts = [call_part] if calls_tool else [{"text": "".join(pieces)}]
            self.send_json(200, self.response(parts, finish), {})
            return
        self.start_stream("text/event-stream")
        for number, piece in enumerate(pieces):
            if self.broke_off(
                number,
                answer,
                lambda: self.data(gemini_error(500, "INTERNAL", "An internal error has occurred.")),
            ):
                return
            self.data(self.response([{"text": piece}], None))
        if calls_tool:
            self.data(self.response([call_part], finish))
        else:
            self.data(self.response([{"text": ""}], finish))
        self.end_stream()

    def response(self, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        usage = {"promptTokenCount": USAGE[0], "candidatesTokenCount": USAGE[1],
                 "totalTokenCount": sum(USAGE)}  # fmt: skip
        return {"candidates": [candidate], "usageMetadata": usage,
                "modelVersion": "gemini-scripted", "responseId": "r1"}  # fmt: skip

    def data(self, payload: dict[str, Any]) -> None:
        self.write_chunk(f"data: {json.dumps(payload)}\r\n\r\n".encode())


# --- OpenAI Chat Completions API --------------------------------------------------------------


def openai_error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class OpenAIHandler(ProtocolHandler):
    """`POST /v1/chat/completions` as OpenAI streams it (usage only if the client asks)."""

    errors: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {
        "401": (401, openai_error("invalid_request_error",
                                  "Incorrect API key provided: sk-test.", "invalid_api_key")),
        "404": (404, openai_error("invalid_request_error",
                                  "The model `gpt-nope` does not exist or you do not have access "
                                  "to it.", "model_not_found")),
        "429": (429, openai_error("requests", "Rate limit reached for requests.",
                                  "rate_limit_exceeded")),
        "500": (500, openai_error("server_error", "The server had an error while processing "
                                  "your request. Sorry about that!")),
        "overflow": (400, openai_error("invalid_request_error",
                                       "This model's maximum context length is 128000 tokens. "
                                       "However, your messages resulted in 130000 tokens.",
                                       "context_length_exceeded")),
    }  # fmt: skip

    def answer(self, answer: str, body: dict[str, Any]) -> None:
        assert urlsplit(self.path).path == "/v1/chat/completions", self.path
        if not body.get("stream"):
            raise AssertionError("ChatOpenAI streams every call the agent makes (stream_usage)")
        last = body["messages"][-1]
        last_is_result = last["role"] == "tool"
        calls_tool = answer == "tool" and not last_is_result
        result_text = str(last["content"]) if last_is_result else ""
        pieces = [] if calls_tool else pieces_for(answer, last_is_result, result_text)
        finish = "tool_calls" if calls_tool else "length" if answer == "length" else "stop"
        arguments = json.dumps(TOOL_ARGUMENTS)
        self.start_stream("text/event-stream")
        self.data(self.chunk(body, {"role": "assistant", "content": ""}))
        if calls_tool:
            self.data(self.chunk(body, {"tool_calls": [{"index": 0, **self.tool_call("")}]}))
            for start in range(0, len(arguments), 5):
                part = {"index": 0, "function": {"arguments": arguments[start : start + 5]}}
                self.data(self.chunk(body, {"tool_calls": [part]}))
        for number, piece in enumerate(pieces):
            if self.broke_off(number, answer, lambda: self.data(self.errors["500"][1])):
                return
            self.data(self.chunk(body, {"content": piece}))
        self.data(self.chunk(body, {}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            self.data({**self.envelope(body, "chat.completion.chunk"), "choices": [],
                       "usage": self.usage()})  # fmt: skip
        self.write_chunk(b"data: [DONE]\n\n")
        self.end_stream()

    def envelope(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"id": "chatcmpl-scripted", "object": kind, "created": 1767225600,
                "model": body["model"], "system_fingerprint": "fp_scripted"}  # fmt: skip

    def chunk(
        self, body: dict[str, Any], delta: dict[str, Any], finish: str | None = None
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self.envelope(body, "chat.completion.chunk"), "choices": [choice],
                "usage": None}  # fmt: skip

    def tool_call(self, arguments: str) -> dict[str, Any]:
        return {"id": "call_0001", "type": "function",
                "function": {"name": "add", "arguments": arguments}}  # fmt: skip

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1],
                "total_tokens": sum(USAGE)}  # fmt: skip

    def data(self, payload: dict[str, Any]) -> None:
        self.write_chunk(f"data: {json.dumps(payload)}\n\n".encode())


def serve(handler: type[ProtocolHandler]) -> Iterator[ScriptedServer]:
    """Run a protocol server for the duration of a fixture."""
    with ScriptedServer(handler) as server:
        yield server
