"""Per-user authorization for the LangGraph server (`"auth"` in langgraph.json).

Off unless configured: with no tokens and no JWT key the server stays open to anyone who can
reach it. Configure one or both (read once, when the server starts):

- AGENT_AUTH_TOKENS="token1:alice,token2:bob": a static token -> user map, for development.
- AGENT_JWT_SECRET (HMAC) or AGENT_JWT_PUBLIC_KEY (PEM text or a file path; RSA/EC/EdDSA):
  verify signed JWTs, for production. AGENT_JWT_ALGORITHMS (default HS256 for a secret,
  RS256 for a public key), optional AGENT_JWT_AUDIENCE / AGENT_JWT_ISSUER, and
  AGENT_JWT_USER_CLAIM (default "sub") names the user. Tokens must carry `exp`.

Then every request needs its token as `Authorization: Bearer <token>` or `x-api-key: <token>`
(else 401); a thread belongs to the user who created it (metadata `owner`, set by the server
on create and kept on every update) and other users get 404 for it; assistants are readable by
all but changed only by their creator.

Open or not, the hooks below also keep every /store request inside the caller's root
("users", label(user)), refuse direct thread-state writes (server code writes through the
auth-free in-process loopback, as agent.server.web does for a stopped reply), delete a
thread's archive with the thread, and apply the operator's run policy (agent.server.policy)
before a run is stored.
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

from agent.memory.namespaces import user_namespace
from agent.server.policy import PolicyError, ServerPolicy, configurable
from agent.server.runtime import forget_thread, readable_assistant, readable_thread, server_store

OWNER = "owner"
ANONYMOUS = "anonymous"
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_PREFIXES = ("RS", "PS", "ES", "Ed")
HOW_TO_SEND = "'Authorization: Bearer <token>' or 'x-api-key: <token>'"


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
        raise unauthorized(f"Missing credentials: send {HOW_TO_SEND}.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'.")
    return token.strip()


def api_key_token(api_key: str) -> str:
    """The token from an `x-api-key: <token>` header (agent-chat-ui, the JS SDK's apiKey)."""
    if not api_key.strip():
        raise unauthorized("x-api-key header is empty: send 'x-api-key: <token>'.")
    return api_key.strip()


def header(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    """A request header's value (names arrive lower-cased from ASGI), or None."""
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def presented_token(headers: Mapping[bytes, bytes]) -> str:
    """The token a request carries: `Authorization: Bearer`, else `x-api-key`.

    Authorization wins when both are sent: the Python SDK adds `x-api-key` by itself from
    LANGSMITH_API_KEY / LANGGRAPH_API_KEY, which must not lock out a client sending Bearer.
    Whichever header is used, its token gets the same checks.
    """
    authorization, api_key = header(headers, b"authorization"), header(headers, b"x-api-key")
    if authorization is None and api_key is not None:
        return api_key_token(api_key)
    return bearer_token(authorization)


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


def identify(settings: AuthSettings, headers: Mapping[bytes, bytes]) -> str:
    """The user behind a request's token (Authorization: Bearer or x-api-key), or a 401."""
    token = presented_token(headers)
    user = static_user(settings.tokens, token)
    if user is not None:
        return user
    if settings.jwt is not None and token.count(".") == 2:
        return jwt_user(settings.jwt, token)
    raise unauthorized("Unknown token.")


def owned(user: str, value: dict[str, Any]) -> None:
    """Stamp the caller as owner, whatever metadata the client sent (on create and update)."""
    # In place: the server keeps its own reference to this metadata dict. On update the
    # ownership filter has already limited the caller to their own resources, so stamping the
    # caller keeps the owner unchanged.
    if value.get("metadata") is None:
        value["metadata"] = {}
    value["metadata"][OWNER] = user


def within_root(root: tuple[str, ...], namespace: Any) -> tuple[str, ...]:
    """A client's namespace placed under the caller's root (already there: kept as is)."""
    labels = tuple(namespace or ())
    return labels if labels[: len(root)] == root else (*root, *labels)


def scope_store_request(identity: str, action: str, value: dict[str, Any]) -> None:
    """Map a /store request into the caller's ("users", label(identity)) root, in place.

    Every namespace a client names (get, put, delete, search prefix, list prefix) lands under
    that root, so no spelling of a user id reaches another user's root or the graph's own
    namespaces ("transcript", "threads"). The namespaces the server reports back include the
    root and can be sent again as they are; `max_depth` counts below the root.
    """
    root = user_namespace(identity)
    value["namespace"] = within_root(root, value.get("namespace"))
    if action == "list_namespaces" and value.get("max_depth") is not None:
        value["max_depth"] = int(value["max_depth"]) + len(root)


def is_state_write(value: dict[str, Any]) -> bool:
    """Whether a threads "update" writes state (update_state, bulk supersteps).

    The server sends metadata with a PATCH and an action with a run cancellation; a state
    write carries the thread id alone.
    """
    return "metadata" not in value and "action" not in value


def state_write_refused() -> Auth.exceptions.HTTPException:
    """Clients add messages through runs; the rest of a thread's state is the server's."""
    return Auth.exceptions.HTTPException(
        status_code=403,
        detail="This server does not let clients write thread state directly (update_state, "
        "supersteps): add messages by creating a run.",
    )


def rejected(error: PolicyError) -> Auth.exceptions.HTTPException:
    """A policy violation as the client sees it: a 4xx naming the limit."""
    return Auth.exceptions.HTTPException(status_code=error.status, detail=str(error))


async def check_run_request(policy: ServerPolicy, value: dict[str, Any]) -> None:
    """Apply the policy to a run before it is stored: its input, settings and assistant's."""
    kwargs = value.get("kwargs") or {}
    try:
        policy.check_run(kwargs)
        assistant_id = value.get("assistant_id")
        assistant = await readable_assistant(assistant_id) if assistant_id else None
        if assistant is not None:  # settings saved before the operator tightened the policy
            policy.check_settings(assistant.get("context"), strict=False)
            policy.check_settings(configurable(assistant.get("config")), strict=False)
    except PolicyError as error:
        raise rejected(error) from error


def check_settings_of(policy: ServerPolicy, value: dict[str, Any]) -> None:
    """Apply the policy to an assistant's saved settings (`context`, `config.configurable`)."""
    try:
        policy.check_settings(value.get("context"))
        policy.check_settings(configurable(value.get("config")), strict=False)
    except PolicyError as error:
        raise rejected(error) from error


def check_cron_payload(policy: ServerPolicy, value: dict[str, Any]) -> None:
    """Apply the policy to the run a cron will start (checked now: cron runs skip the hooks)."""
    try:
        policy.check_run(value.get("payload") or {})
    except PolicyError as error:
        raise rejected(error) from error


async def forget_deleted_thread(value: dict[str, Any]) -> None:
    """Before a thread is deleted, delete what the graph stored for it (archive, record).

    Runs only for a thread the caller may read (the same check the deletion then makes), and
    not for deleting one run of a thread (that event carries a run id).
    """
    thread_id = value.get("thread_id")
    if thread_id is None or value.get("run_id") is not None:
        return
    if await readable_thread(thread_id) is not None:
        await forget_thread(await server_store(), str(thread_id))


def build_auth(settings: AuthSettings, policy: ServerPolicy | None = None) -> Auth:
    """The server's Auth object: who may call it, what they may touch, and what they may send.

    Args:
        settings: Tokens and JWT verification; nothing configured means an open server, where
            everyone is the same anonymous user (ownership filters are then off).
        policy: Limits on run settings and input (default: from the environment).

    Returns:
        The Auth object the server loads through langgraph.json.
    """
    auth = Auth()
    rules = ServerPolicy.from_env() if policy is None else policy
    scoped = settings.enabled

    def only_owner(ctx: Auth.types.AuthContext) -> Auth.types.FilterType | None:
        """Limit a request to the caller's own resources (none on an open server)."""
        return {OWNER: ctx.user.identity} if scoped else None

    @auth.authenticate
    async def authenticate(headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
        """Accept a configured static token or a valid JWT (open server: anyone, anonymous)."""
        if not scoped:
            return {"identity": ANONYMOUS}
        return {"identity": identify(settings, headers)}

    @auth.on.threads
    async def own_threads(
        ctx: Auth.types.AuthContext, value: dict[str, Any]
    ) -> Auth.types.FilterType | None:
        """Threads (and their runs) are visible to and usable by their owner only."""
        if ctx.action == "update" and is_state_write(value):
            raise state_write_refused()
        if ctx.action == "create_run":
            await check_run_request(rules, value)
        if ctx.action in ("create", "create_run", "update"):
            owned(ctx.user.identity, value)
        if ctx.action == "delete":
            await forget_deleted_thread(value)
        return only_owner(ctx)

    @auth.on.crons
    async def own_crons(
        ctx: Auth.types.AuthContext, value: dict[str, Any]
    ) -> Auth.types.FilterType | None:
        """Scheduled runs belong to their creator, like threads, and obey the run policy."""
        if ctx.action in ("create", "update"):
            check_cron_payload(rules, value)
            owned(ctx.user.identity, value)
        return only_owner(ctx)

    @auth.on.assistants
    async def shared_assistants(
        ctx: Auth.types.AuthContext, value: dict[str, Any]
    ) -> Auth.types.FilterType | None:
        """Assistants (e.g. one per persona) are readable by all; only the creator changes them."""
        if ctx.action in ("read", "search"):
            return None
        if ctx.action in ("create", "update"):
            check_settings_of(rules, value)
            owned(ctx.user.identity, value)
        return None if ctx.action == "create" else only_owner(ctx)

    @auth.on.store
    async def own_namespace(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
        """Store items live under the caller's own root, ("users", label(identity), ...)."""
        scope_store_request(ctx.user.identity, ctx.action, value)

    @auth.on
    async def deny_everything_else(ctx: Auth.types.AuthContext, value: Any) -> bool:
        """Default deny: a resource without a rule above is forbidden."""
        return False

    return auth


auth = build_auth(AuthSettings.from_env())
