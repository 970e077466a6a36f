"""Per-user authorization for the LangGraph server (`"auth"` in langgraph.json).

Off unless configured: with no tokens and no JWT key the server stays open to anyone who can
reach it. Configure one or both (read once, when the server starts):

- AGENT_AUTH_TOKENS="token1:alice,token2:bob": a static token -> user map, for development.
- AGENT_JWT_SECRET (HMAC) or AGENT_JWT_PUBLIC_KEY (PEM text or a file path; RSA/EC/EdDSA):
  verify signed JWTs, for production. AGENT_JWT_ALGORITHMS (default HS256 for a secret,
  RS256 for a public key), optional AGENT_JWT_AUDIENCE / AGENT_JWT_ISSUER, and
  AGENT_JWT_USER_CLAIM (default "sub") names the user. Tokens must carry `exp`.

Then every request needs `Authorization: Bearer <token>` (else 401); a thread belongs to the
user who created it (metadata `owner`) and other users get 404 for it; store namespaces are
scoped per user; assistants are readable by all but changed only by their creator.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from langgraph_sdk import Auth

OWNER = "owner"
ANONYMOUS = "anonymous"
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_PREFIXES = ("RS", "PS", "ES", "Ed")


class AuthConfigError(ValueError):
    """Raised at server start for auth settings that cannot be used safely."""


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """A non-empty environment value, or None."""
    return environ.get(name, "").strip() or None


def parse_token_map(text: str) -> dict[str, str]:
    """Parse "token1:alice,token2:bob" into {token: user}, rejecting malformed entries."""
    tokens: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        token, sep, user = (piece.strip() for piece in entry.rpartition(":"))
        if not sep or not token or not user:
            raise AuthConfigError(
                f"AGENT_AUTH_TOKENS entry {entry!r} must look like token:user "
                "(entries separated by commas)."
            )
        if token in tokens:
            raise AuthConfigError("AGENT_AUTH_TOKENS lists the same token twice.")
        tokens[token] = user
    return tokens


def read_public_key(value: str) -> str:
    """Accept the PEM text itself or a path to a PEM file."""
    if value.startswith("-----BEGIN"):
        return value.replace("\\n", "\n")
    path = Path(value).expanduser()
    if not path.is_file():
        raise AuthConfigError(
            "AGENT_JWT_PUBLIC_KEY must be PEM text (-----BEGIN PUBLIC KEY-----...) or a file path; "
            f"{value!r} is neither."
        )
    return path.read_text(encoding="utf-8")


def check_secret_length(secret: str, algorithms: tuple[str, ...]) -> None:
    """Refuse HMAC secrets shorter than the hash (RFC 7518 3.2): they can be brute-forced."""
    needed = max(int(name[2:]) // 8 for name in algorithms)
    if len(secret.encode()) < needed:
        raise AuthConfigError(
            f"AGENT_JWT_SECRET must be at least {needed} bytes for {', '.join(algorithms)} "
            f"(got {len(secret.encode())}); generate one with: openssl rand -hex 32"
        )


def check_algorithms(algorithms: tuple[str, ...], hmac_key: bool) -> None:
    """Refuse algorithm lists that would allow forged tokens (none, or key-type confusion)."""
    if not algorithms:
        raise AuthConfigError("AGENT_JWT_ALGORITHMS is empty.")
    for name in algorithms:
        if name.lower() == "none":
            raise AuthConfigError("AGENT_JWT_ALGORITHMS must not include 'none'.")
        if hmac_key and name not in HMAC_ALGORITHMS:
            raise AuthConfigError(
                f"AGENT_JWT_SECRET works with {', '.join(sorted(HMAC_ALGORITHMS))}, not {name}; "
                "use AGENT_JWT_PUBLIC_KEY for asymmetric algorithms."
            )
        if not hmac_key and not name.startswith(ASYMMETRIC_PREFIXES):
            raise AuthConfigError(
                f"AGENT_JWT_PUBLIC_KEY needs an asymmetric algorithm (RS256, ES256...), not {name}."
            )


@dataclass(frozen=True)
class JwtSettings:
    """How to verify a JWT: key, allowed algorithms, expected audience and issuer."""

    key: str
    algorithms: tuple[str, ...]
    audience: str | None = None
    issuer: str | None = None
    user_claim: str = "sub"


@dataclass(frozen=True)
class AuthSettings:
    """Who may call the server: static development tokens and/or JWT verification."""

    tokens: Mapping[str, str] = field(default_factory=dict)
    jwt: JwtSettings | None = None

    @property
    def enabled(self) -> bool:
        """Whether requests must authenticate (anything configured)."""
        return bool(self.tokens) or self.jwt is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Read AGENT_AUTH_TOKENS and AGENT_JWT_* (see the module docstring)."""
        env = os.environ if environ is None else environ
        tokens = parse_token_map(_env(env, "AGENT_AUTH_TOKENS") or "")
        secret, public = _env(env, "AGENT_JWT_SECRET"), _env(env, "AGENT_JWT_PUBLIC_KEY")
        if secret and public:
            raise AuthConfigError("Set AGENT_JWT_SECRET or AGENT_JWT_PUBLIC_KEY, not both.")
        if not secret and not public:
            return cls(tokens=tokens)
        default = "HS256" if secret else "RS256"
        listed = (_env(env, "AGENT_JWT_ALGORITHMS") or default).split(",")
        algorithms = tuple(a.strip() for a in listed if a.strip())
        check_algorithms(algorithms, hmac_key=secret is not None)
        if secret:
            check_secret_length(secret, algorithms)
        return cls(
            tokens=tokens,
            jwt=JwtSettings(
                key=secret or read_public_key(public or ""),
                algorithms=algorithms,
                audience=_env(env, "AGENT_JWT_AUDIENCE"),
                issuer=_env(env, "AGENT_JWT_ISSUER"),
                user_claim=_env(env, "AGENT_JWT_USER_CLAIM") or "sub",
            ),
        )


def unauthorized(detail: str) -> Auth.exceptions.HTTPException:
    """A 401 that tells the client which scheme to use."""
    return Auth.exceptions.HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def bearer_token(authorization: str | None) -> str:
    """The token from an `Authorization: Bearer <token>` header, or a 401."""
    if not authorization:
        raise unauthorized("Missing Authorization header: send 'Authorization: Bearer <token>'.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'.")
    return token.strip()


def static_user(tokens: Mapping[str, str], token: str) -> str | None:
    """The user a static token belongs to, comparing in constant time."""
    found = None
    for known, user in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = user
    return found


def jwt_user(settings: JwtSettings, token: str) -> str:
    """The user named by a valid JWT, or a 401 saying why it was refused."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.key,
            algorithms=list(settings.algorithms),
            audience=settings.audience,
            issuer=settings.issuer,
            options={"require": ["exp", settings.user_claim]},
        )
    except jwt.ExpiredSignatureError as error:
        raise unauthorized("Token expired.") from error
    except jwt.InvalidTokenError as error:
        raise unauthorized(f"Invalid token: {error}.") from error
    user = claims.get(settings.user_claim)
    if not isinstance(user, str) or not user:
        raise unauthorized(f"Token claim {settings.user_claim!r} must name the user.")
    return user


def identify(settings: AuthSettings, authorization: str | None) -> str:
    """The user behind a request's Authorization header, or a 401."""
    token = bearer_token(authorization)
    user = static_user(settings.tokens, token)
    if user is not None:
        return user
    if settings.jwt is not None and token.count(".") == 2:
        return jwt_user(settings.jwt, token)
    raise unauthorized("Unknown token.")


def owned(user: str, value: dict[str, Any]) -> None:
    """Stamp the creator as owner, whatever metadata the client sent."""
    # In place: the server keeps its own reference to this metadata dict.
    if value.get("metadata") is None:
        value["metadata"] = {}
    value["metadata"][OWNER] = user


def build_auth(settings: AuthSettings) -> Auth:
    """The server's Auth object: open when nothing is configured, per-user otherwise."""
    auth = Auth()

    if not settings.enabled:

        @auth.authenticate
        async def open_access() -> Auth.types.MinimalUserDict:
            """No auth configured: everyone is the same anonymous user (see docs/server.md)."""
            return {"identity": ANONYMOUS}

        return auth

    @auth.authenticate
    async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
        """Accept a configured static token or a valid JWT."""
        return {"identity": identify(settings, authorization)}

    @auth.on.threads
    async def own_threads(
        ctx: Auth.types.AuthContext, value: dict[str, Any]
    ) -> Auth.types.FilterType:
        """Threads (and their runs) are visible to and usable by their owner only."""
        if ctx.action in ("create", "create_run"):
            owned(ctx.user.identity, value)
        return {OWNER: ctx.user.identity}

    @auth.on.crons
    async def own_crons(
        ctx: Auth.types.AuthContext, value: dict[str, Any]
    ) -> Auth.types.FilterType:
        """Scheduled runs belong to their creator, like threads."""
        if ctx.action == "create":
            owned(ctx.user.identity, value)
        return {OWNER: ctx.user.identity}

    @auth.on.assistants
    async def shared_assistants(
        ctx: Auth.types.AuthContext, value: dict[str, Any]
    ) -> Auth.types.FilterType | None:
        """Assistants (e.g. one per persona) are readable by all; only the creator changes them."""
        if ctx.action == "create":
            owned(ctx.user.identity, value)
            return None
        if ctx.action in ("read", "search"):
            return None
        return {OWNER: ctx.user.identity}

    @auth.on.store
    async def own_namespace(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
        """Store items live under the user's own namespace prefix."""
        namespace = tuple(value.get("namespace") or ())
        if namespace[:1] != (ctx.user.identity,):
            value["namespace"] = (ctx.user.identity, *namespace)

    @auth.on
    async def deny_everything_else(ctx: Auth.types.AuthContext, value: Any) -> bool:
        """Default deny: a resource without a rule above is forbidden."""
        return False

    return auth


auth = build_auth(AuthSettings.from_env())
