"""Auth settings and token checks (server behaviour: tests/integration/test_auth.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from langgraph_sdk import Auth

from agent.server.auth import (
    AuthConfigError,
    AuthSettings,
    bearer_token,
    identify,
    parse_token_map,
    presented_token,
    scope_store_request,
)

SECRET = "x" * 32


def test_token_map_parses_pairs_and_rejects_malformed_entries() -> None:
    assert parse_token_map(" a1:alice , b2:bob ,") == {"a1": "alice", "b2": "bob"}
    assert parse_token_map("") == {}
    for bad in ("justatoken", ":alice", "tok:", "t:a,t:b"):
        with pytest.raises(AuthConfigError):
            parse_token_map(bad)


def test_nothing_configured_means_open() -> None:
    assert not AuthSettings.from_env({}).enabled
    assert AuthSettings.from_env({"AGENT_AUTH_TOKENS": "t:alice"}).enabled


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"AGENT_JWT_SECRET": SECRET, "AGENT_JWT_PUBLIC_KEY": "k"}, "not both"),
        ({"AGENT_JWT_SECRET": "short"}, "at least 32 bytes"),
        ({"AGENT_JWT_SECRET": "x" * 48, "AGENT_JWT_ALGORITHMS": "HS512"}, "at least 64 bytes"),
        ({"AGENT_JWT_SECRET": SECRET, "AGENT_JWT_ALGORITHMS": "RS256"}, "not RS256"),
        ({"AGENT_JWT_SECRET": SECRET, "AGENT_JWT_ALGORITHMS": "none"}, "'none'"),
        ({"AGENT_JWT_PUBLIC_KEY": "/no/such/key.pem"}, "neither"),
    ],
)
def test_unsafe_jwt_settings_fail_at_startup(env: dict[str, str], problem: str) -> None:
    with pytest.raises(AuthConfigError, match=problem):
        AuthSettings.from_env(env)


def test_public_key_must_not_be_used_with_hmac(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n")
    env = {"AGENT_JWT_PUBLIC_KEY": str(pem), "AGENT_JWT_ALGORITHMS": "HS256"}
    with pytest.raises(AuthConfigError, match="asymmetric"):
        AuthSettings.from_env(env)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Token abc"])
def test_bearer_token_requires_the_bearer_scheme(header: str | None) -> None:
    with pytest.raises(Auth.exceptions.HTTPException) as raised:
        bearer_token(header)
    assert raised.value.status_code == 401


def test_static_tokens_identify_their_user() -> None:
    settings = AuthSettings.from_env({"AGENT_AUTH_TOKENS": "t-a:alice,t-b:bob"})
    assert identify(settings, authorization("Bearer t-b")) == "bob"
    assert identify(settings, authorization("bearer t-a")) == "alice"
    assert identify(settings, {b"x-api-key": b"t-a"}) == "alice"
    with pytest.raises(Auth.exceptions.HTTPException):
        identify(settings, authorization("Bearer t-c"))


def authorization(value: str) -> dict[bytes, bytes]:
    """Request headers (as ASGI delivers them) with an Authorization header."""
    return {b"authorization": value.encode()}


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({b"authorization": b"Bearer abc"}, "abc"),
        ({b"x-api-key": b" abc "}, "abc"),
        ({b"authorization": b"Bearer abc", b"x-api-key": b"abc"}, "abc"),
        ({b"authorization": b"Bearer abc", b"x-api-key": b"a-langsmith-key"}, "abc"),
    ],
)
def test_the_token_comes_as_bearer_or_x_api_key(headers: dict[bytes, bytes], token: str) -> None:
    assert presented_token(headers) == token


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "Missing credentials"),
        ({b"x-api-key": b"  "}, "x-api-key header is empty"),
        ({b"authorization": b"Basic abc", b"x-api-key": b"abc"}, "must be 'Bearer <token>'"),
    ],
)
def test_missing_or_malformed_token_headers_get_401(
    headers: dict[bytes, bytes], problem: str
) -> None:
    with pytest.raises(Auth.exceptions.HTTPException) as raised:
        presented_token(headers)
    assert raised.value.status_code == 401 and problem in str(raised.value.detail)


@pytest.mark.parametrize(
    ("user", "action", "namespace", "scoped"),
    [
        ("alice", "put", ("notes",), ("users", "alice", "notes")),
        ("alice", "search", (), ("users", "alice")),
        ("alice", "list_namespaces", None, ("users", "alice")),
        ("alice", "get", ("users", "alice", "notes"), ("users", "alice", "notes")),
        ("transcript", "search", ("transcript",), ("users", "transcript", "transcript")),
        ("users", "get", ("users", "alice"), ("users", "users", "users", "alice")),
        ("a.b@x.org", "put", ("m",), ("users", "a%2Eb%40x%2Eorg", "m")),
        ("a%2Eb", "search", ("users", "a%2Eb"), ("users", "a%252Eb", "users", "a%2Eb")),
    ],
)
def test_store_requests_land_under_the_callers_root(
    user: str, action: str, namespace: tuple[str, ...] | None, scoped: tuple[str, ...]
) -> None:
    value: dict[str, object] = {"namespace": namespace}
    scope_store_request(user, action, value)
    assert value["namespace"] == scoped


def test_list_namespaces_depth_counts_below_the_root() -> None:
    value: dict[str, object] = {"namespace": None, "max_depth": 1}
    scope_store_request("alice", "list_namespaces", value)
    assert value == {"namespace": ("users", "alice"), "max_depth": 3}


def hs256_signed_with(key: bytes, claims: dict[str, object]) -> str:
    """A JWT HMAC-signed with arbitrary bytes (pyjwt refuses to build this key confusion)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = ".".join(
        part(json.dumps(x).encode()) for x in ({"alg": "HS256", "typ": "JWT"}, claims)
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def test_rs256_tokens_verify_against_a_public_key_file(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "public.pem").write_bytes(public_pem)
    settings = AuthSettings.from_env(
        {"AGENT_JWT_PUBLIC_KEY": str(tmp_path / "public.pem"), "AGENT_JWT_ISSUER": "idp"}
    )
    claims = {"sub": "dana", "iss": "idp", "exp": int(time.time()) + 60}

    signed = jwt.encode(claims, private, algorithm="RS256")
    assert identify(settings, authorization(f"Bearer {signed}")) == "dana"
    for forged in (
        jwt.encode({**claims, "iss": "elsewhere"}, private, algorithm="RS256"),
        hs256_signed_with(public_pem, claims),  # algorithm-confusion attempt
    ):
        with pytest.raises(Auth.exceptions.HTTPException) as raised:
            identify(settings, authorization(f"Bearer {forged}"))
        assert raised.value.status_code == 401
