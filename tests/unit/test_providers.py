"""`provider:model` names: parsing, the missing-extra error, client settings, counting, errors."""

from __future__ import annotations

import sys

import anthropic
import httpx
import ollama
import pytest
from google.genai import errors as genai_errors
from langchain_anthropic import ChatAnthropic
from langchain_core import exceptions as core
from langchain_core.messages import HumanMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI

from agent import Chatbot, Context
from agent.errors import (
    AgentError,
    ContextOverflowError,
    MissingProviderError,
    ModelAuthError,
    ModelConnectionLostError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelRequestError,
    ModelServerError,
    ModelUnreachableError,
)
from agent.models import resolve_backend
from agent.models.failures import advice_for, describe_model, translate
from agent.models.providers import ProviderBackend, provider_chat_model, split_model_name
from agent.models.retrying import retry_delay

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/messages")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        ("google_genai:gemini-2.5-flash", ("google_genai", "gemini-2.5-flash")),
        ("ollama:qwen2.5:1.5b", ("ollama", "qwen2.5:1.5b")),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("groq:llama-3.3-70b", ("groq", "llama-3.3-70b")),
        ("gpt-4o-mini", None),  # bare: the configured backend, not an inferred provider
        ("claude-sonnet-4-5", None),
        ("qwen2.5:1.5b", None),  # an Ollama-style name for a compatible server
        ("mistral:7b", None),  # `mistral` is not a provider key (`mistralai` is)
        ("anthropic:", None),
        (None, None),
    ],
)
def test_only_a_known_provider_prefix_makes_a_provider_name(
    name: str | None, expected: tuple[str, str] | None
) -> None:
    named = split_model_name(name)
    assert (None if named is None else (named[0].name, named[1])) == expected


@pytest.mark.parametrize(
    ("model", "cls"),
    [
        ("anthropic:claude-x", ChatAnthropic),
        ("google_genai:gemini-x", ChatGoogleGenerativeAI),
        ("ollama:qwen2.5:1.5b", ChatOllama),
        ("openai:gpt-4o-mini", ChatOpenAI),
    ],
)
def test_a_provider_name_wins_over_the_configured_backend(
    model: str, cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(key, "k")
    monkeypatch.setenv("AGENT_BACKEND", "embedded")  # would start llama.cpp for a bare name
    context = Context(model=model, temperature=0.2, max_reply_tokens=77)
    serving = resolve_backend().for_run(context)
    assert isinstance(serving, ProviderBackend)
    built = serving.chat_model(context)
    assert isinstance(built, cls)
    assert serving.budget(context) is None  # no embedded slot to size
    assert built is serving.chat_model(context)  # cached per settings

    monkeypatch.setenv("AGENT_MODEL", model)  # the same name from the environment
    from_env = resolve_backend().for_run(Context())
    assert isinstance(from_env, ProviderBackend)
    assert isinstance(from_env.chat_model(Context()), cls)


def test_each_client_gets_the_reply_cap_temperature_and_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("GOOGLE_API_KEY", "k")
    claude = provider_chat_model("anthropic:claude-x", 0.3, 64)
    assert isinstance(claude, ChatAnthropic)
    assert (claude.max_tokens, claude.temperature, claude.max_retries) == (64, 0.3, 2)
    gemini = provider_chat_model("google_genai:gemini-x", 0.3, 64)
    assert isinstance(gemini, ChatGoogleGenerativeAI)
    assert (gemini.max_output_tokens, gemini.max_retries) == (64, 3)  # attempts: 1 + 2 retries
    llama = provider_chat_model("ollama:qwen2.5:1.5b", 0.3, 64)
    assert isinstance(llama, ChatOllama)
    assert (llama.num_predict, llama.model) == (64, "qwen2.5:1.5b")


def test_a_changed_provider_environment_builds_a_new_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
    context = Context(model="anthropic:claude-x")
    serving = resolve_backend().for_run(context)
    first = serving.chat_model(context)
    assert serving.chat_model(context) is first
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:2")
    second = serving.chat_model(context)
    assert isinstance(second, ChatAnthropic)
    assert first is not second and second.anthropic_api_url == "http://127.0.0.1:2"


def test_a_missing_provider_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)  # as if not installed
    with pytest.raises(MissingProviderError) as caught:
        provider_chat_model("anthropic:claude-x")
    assert "pip install 'agent[anthropic]'" in str(caught.value)
    assert "langchain-anthropic" in str(caught.value)
    assert isinstance(caught.value, AgentError) and isinstance(caught.value, ValueError)


def test_a_provider_without_an_extra_names_its_package() -> None:
    with pytest.raises(MissingProviderError, match=r"pip install langchain-groq"):
        provider_chat_model("groq:llama-3.3-70b")  # langchain-groq is not installed here


def test_a_missing_provider_fails_the_turn_and_keeps_the_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_ollama", None)
    bot = Chatbot(model="ollama:llama3.2")
    with pytest.raises(MissingProviderError, match=r"agent\[ollama\]"):
        bot.say("Hi")
    assert not any(m.type == "human" for m in bot.history())  # the turn was rolled back


def test_providers_count_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BACKEND", "embedded")  # bare names would count with llama.cpp
    backend = resolve_backend()

    def counter(model: str) -> object:
        context = Context(model=model)
        return backend.for_run(context).count_tokens(context)

    for model in ("anthropic:claude-x", "google_genai:gemini-x", "ollama:llama3.2"):
        assert counter(model) is count_tokens_approximately
    openai_counter = counter("openai:gpt-4o-mini")
    assert openai_counter is not count_tokens_approximately
    assert openai_counter([HumanMessage("hello world")]) == 2 + 3  # type: ignore[operator]


def test_provider_models_are_described_with_their_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:7/")
    claude = provider_chat_model("anthropic:claude-x")
    assert describe_model(claude) == "Anthropic claude-x at http://127.0.0.1:7/"
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:8")
    llama = provider_chat_model("ollama:llama3.2")
    assert describe_model(llama) == "Ollama llama3.2 at http://127.0.0.1:8"
    assert "ollama serve" in advice_for(llama)[ModelUnreachableError]
    assert "ANTHROPIC_API_KEY" in advice_for(claude)[ModelAuthError]
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # read by the openai SDK
    gpt = provider_chat_model("openai:gpt-4o-mini")
    assert describe_model(gpt) == "OpenAI gpt-4o-mini at http://127.0.0.1:9/v1"
    assert "openai:" in advice_for(gpt)[ModelNotFoundError]


def anthropic_status(status: int, kind: str, message: str) -> anthropic.APIStatusError:
    response = httpx.Response(status, request=REQUEST)
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return anthropic.APIStatusError(message, response=response, body=body)


@pytest.mark.parametrize(
    ("error", "typed"),
    [
        (core.ModelAuthenticationError("bad key"), ModelAuthError),
        (core.ModelPermissionDeniedError("no"), ModelAuthError),
        (core.ModelNotFoundError("no model"), ModelNotFoundError),
        (core.ModelRateLimitError("slow"), ModelRateLimitError),
        (core.ModelAPIError("boom"), ModelServerError),
        (core.ModelInvalidRequestError("odd"), ModelRequestError),
        (core.ContextOverflowError("too long"), ContextOverflowError),
        (core.ModelConnectionError("refused"), ModelUnreachableError),
        (ollama.ResponseError('{"error":"model \\"x\\" not found"}', 404), ModelNotFoundError),
        (ollama.ResponseError("busy", 503), ModelServerError),
        (ollama.ResponseError("slow down", 429), ModelRateLimitError),
        (ollama.ResponseError("unauthorized", 401), ModelAuthError),
        (ollama.ResponseError("something broke mid-stream"), ModelServerError),  # no status
        (genai_errors.ClientError(429, {"error": {"message": "quota"}}), ModelRateLimitError),
        (genai_errors.ServerError(503, {"error": {"message": "unavailable"}}), ModelServerError),
        (anthropic_status(200, "overloaded_error", "Overloaded"), ModelServerError),
        (anthropic_status(200, "rate_limit_error", "Too fast"), ModelRateLimitError),
        (
            anthropic_status(400, "invalid_request_error", "prompt is too long"),
            ContextOverflowError,
        ),  # noqa: E501
        (anthropic.APIConnectionError(request=REQUEST), ModelUnreachableError),
        (httpx.ConnectError("refused"), ModelUnreachableError),
        (httpx.RemoteProtocolError("peer closed connection"), ModelConnectionLostError),
    ],
)
def test_every_client_failure_becomes_a_typed_error(error: Exception, typed: type) -> None:
    result = translate(error, "the backend", {ModelAuthError: "Set THE_KEY."})
    assert type(result) is typed
    assert "(the backend)" in str(result)
    if typed is ModelAuthError:
        assert "Set THE_KEY." in str(result)


def test_errors_that_are_not_model_failures_are_left_alone() -> None:
    assert translate(KeyError("x"), "b") is None
    assert translate(ValueError("bad value"), "b") is None
    assert translate(ConnectionError("a fake model's own failure"), "b") is None


def test_the_retry_delay_honours_retry_after_then_backs_off() -> None:
    assert retry_delay(0, httpx.Response(429, headers={"retry-after-ms": "20"})) == 0.02
    assert retry_delay(0, httpx.Response(429, headers={"retry-after": "3"})) == 3.0
    assert retry_delay(0, httpx.Response(429, headers={"retry-after": "3600"})) == 8.0
    assert [retry_delay(n, None) for n in range(3)] == [0.5, 1.0, 2.0]
