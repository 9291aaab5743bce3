"""The agent's HTTP surface, as one small ASGI application (no framework: this is the hot path).

- `GET /metadata/identity/oauth2/token`: Azure IMDS (compat §4.2): `Metadata: true` required.
- `GET /msi/token`: App Service: `X-IDENTITY-HEADER` must equal the agent's secret (constant time).
- `GET /metadata/identity/oauth2/identitytoken`: an identity token signed by the tenant for an
  `audience` on the identity's allowlist (outbound federation), `Metadata: true` required; the same
  identity checks as for access tokens, cached per (identity, audience).
- `GET /agent/status`: the agent's state, for `keyless agent status` (`Metadata: true` required).
- `GET /metrics`: Prometheus text (request counts, state, cached tokens, certificate expiry).

Every request, on every listener: GET only and no body (405 otherwise, F06/F11; no CORS headers
ever); no proxy headers (F02); no browser headers (`Origin`, `Sec-Fetch-*`, DNS-rebinding defence);
on TCP, `Host` must be on the allowlist; the query is small, has no repeated parameter and a known
`api-version` (F10, F12); one caller's flood is cut off with 429 (F15). Answers are never cacheable.
On the Unix socket the caller's peer credentials choose what it may use (`entitlements`), and are
checked again just before a token is sent.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson

from keyless import text
from keyless.agent.cache import AgentTokenCache
from keyless.agent.entitlements import Entitlements, Identity
from keyless.agent.metrics import metrics_text
from keyless.agent.peer import Peer, still_same
from keyless.agent.ratelimit import CallerLimiter
from keyless.agent.server_api import ID_TOKEN_TYPE, ServerRefused, ServerUnavailable
from keyless.client.core import Token
from keyless.errors import KeylessError
from keyless.ids import is_guid

log = logging.getLogger("keyless.agent")

IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/msi/token"
IDENTITY_TOKEN_PATH = "/metadata/identity/oauth2/identitytoken"  # noqa: S105 - a path, not a secret
STATUS_PATH = "/agent/status"
METRICS_PATH = "/metrics"
LABELS = {IMDS_PATH: "imds", APP_SERVICE_PATH: "app_service", IDENTITY_TOKEN_PATH: "identity_token",
          STATUS_PATH: "status", METRICS_PATH: "metrics"}
# Who may call each endpoint (docs/agent.md, "Endpoints"): the proof the request must carry, and
# whether the identity it asks for must be one the caller may use (entitlements: assignment and
# workload bindings). tests/integration/agent/test_agent_matrix.py walks this table.
PROOF_METADATA = "metadata-header"
PROOF_IDENTITY_HEADER = "identity-header"
PROOF_NONE = "none"
ACCESS: dict[str, tuple[str, bool]] = {  # path -> (proof, identity checked against the caller)
    IMDS_PATH: (PROOF_METADATA, True),
    APP_SERVICE_PATH: (PROOF_IDENTITY_HEADER, True),
    IDENTITY_TOKEN_PATH: (PROOF_METADATA, True),
    STATUS_PATH: (PROOF_METADATA, False),
    METRICS_PATH: (PROOF_NONE, False),
}
if set(ACCESS) != set(LABELS):  # pragma: no cover - an endpoint added without a declaration fails at import
    raise RuntimeError(f"agent endpoints without a declared access: {sorted(set(ACCESS) ^ set(LABELS))}")
METRICS_HEADERS = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8"), (b"cache-control", b"no-store")]
IMDS_VERSIONS = frozenset({"2017-12-01", "2018-02-01", "2019-03-11", "2019-06-01", "2019-08-01", "2019-11-01",
                           "2020-06-01", "2021-01-01", "2021-02-01", "2021-05-01", "2023-07-01"})
APP_SERVICE_VERSIONS = frozenset({"2017-09-01", "2019-08-01"})
IDENTITY_PARAMS = ("client_id", "object_id", "msi_res_id", "mi_res_id", "resource_id", "principal_id")
PROXY_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip", b"via", b"x-forwarded-host",
                           b"x-forwarded-proto"})
KNOWN_PARAMS = frozenset({"api-version", "resource", "audience", *IDENTITY_PARAMS})
MAX_QUERY = 2048
MAX_RESOURCE = 512
MAX_HEADERS = 64
BASE_HEADERS = [(b"content-type", b"application/json; charset=utf-8"), (b"cache-control", b"no-store"),
                (b"pragma", b"no-cache"), (b"x-content-type-options", b"nosniff")]
NOT_FOUND_IDENTITY = "Identity not found"
QUERY_MEMO = 256
_QUERIES: dict[bytes, dict[str, str]] = {}  # accepted query string -> its parameters (read-only)
_RESOURCE_CHARS = re.compile(r"[!-~]+")  # printable ASCII, no space

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class AgentCore(Protocol):
    """What the endpoints need from the running agent."""

    cache: AgentTokenCache
    identity_tokens: AgentTokenCache
    entitlements: Entitlements
    limiter: CallerLimiter
    allowed_hosts: frozenset[bytes]
    revoked: bool

    def identity_header(self) -> str: ...
    def status(self) -> dict[str, Any]: ...


class Refusal(KeylessError):
    """An error answer. Its description is held to RFC 6749 §5.2's set here, where every refusal is
    built, whatever a caller of this class passes (keyless.text)."""

    def __init__(self, status: int, error: str, description: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = text.description(description)
        self.headers = list(headers)


async def _respond(send: Send, status: int, body: bytes, extra: Iterable[tuple[bytes, bytes]] = (),
                   base: list[tuple[bytes, bytes]] = BASE_HEADERS) -> None:
    headers = [*base, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(error: str, description: str) -> bytes:
    return orjson.dumps({"error": error, "error_description": description})


def _query(raw: bytes) -> dict[str, str]:
    """The query's parameters. A client sends the same query again and again (an SDK builds one URL
    per identity and resource), so accepted queries are remembered, at most `QUERY_MEMO` of them; the
    result is only read, never changed (docs/benchmarks.md, "Host agent")."""
    known = _QUERIES.get(raw)
    if known is not None:
        return known
    if len(raw) > MAX_QUERY:
        raise Refusal(400, "invalid_request", "the query string is too long")
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "invalid_request", "the query string is malformed") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            # Named only when it is one of ours: a caller's own bytes are never reflected (§5.2).
            named = f"the parameter {name}" if name in KNOWN_PARAMS else "a parameter"
            raise Refusal(400, "invalid_request", f"{named} is repeated")
        out[name] = value
    if len(_QUERIES) >= QUERY_MEMO:  # many distinct queries (a scan): start again, memory stays bounded
        _QUERIES.clear()
    _QUERIES[raw] = out
    return out


def _path(scope: dict[str, Any]) -> str:
    """The endpoint's path, with one trailing slash allowed: MSAL Node canonicalises the IMDS URL built
    from `AZURE_POD_IDENTITY_AUTHORITY_HOST` to `/metadata/identity/oauth2/token/`, and IMDS answers it."""
    path: str = scope["path"]
    return path[:-1] if path.endswith("/") and path[:-1] in LABELS else path


def _resource(params: dict[str, str], name: str = "resource") -> str:
    resource = params.get(name)
    if not resource:
        raise Refusal(400, "invalid_request", "Required audience parameter not specified")
    if len(resource) > MAX_RESOURCE or not _RESOURCE_CHARS.fullmatch(resource) or (
        ":" not in resource and not is_guid(resource)
    ):
        raise Refusal(400, f"invalid_{name}", f"the {name} must be a URI or an application id")
    return resource


def _identity_ref(params: dict[str, str]) -> str | None:
    given = [params[p] for p in IDENTITY_PARAMS if p in params]
    if len(given) > 1:
        raise Refusal(400, "invalid_request", "give at most one of client_id, object_id, msi_res_id")
    if given and not given[0]:
        raise Refusal(400, "invalid_request", NOT_FOUND_IDENTITY)
    return given[0] if given else None


def tcp_caller(uid: int | None) -> Peer | None:
    """A TCP caller as far as it can be known: its user, not its process or group, so only bindings
    that select by uid alone can match it (`peer.matches`)."""
    return Peer(pid=0, uid=uid, gid=-1) if uid is not None else None


def imds_body(token: Token, identity: Identity, resource: str, now: float) -> bytes:
    expires_on = int(token.expires_on)
    return orjson.dumps({
        "access_token": token.access_token, "client_id": identity.client_id,
        "expires_in": str(max(0, expires_on - int(now))), "expires_on": str(expires_on),
        "ext_expires_in": str(max(0, expires_on - int(now))), "resource": resource, "token_type": "Bearer",
    })


def app_service_body(token: Token, identity: Identity, resource: str, now: float) -> bytes:
    return orjson.dumps({
        "access_token": token.access_token, "expires_on": str(int(token.expires_on)), "resource": resource,
        "token_type": "Bearer", "client_id": identity.client_id,
    })


def identity_token_body(token: Token, identity: Identity, audience: str, now: float) -> bytes:
    expires_on = int(token.expires_on)
    return orjson.dumps({
        "token": token.access_token, "audience": audience, "client_id": identity.client_id,
        "expires_in": max(0, expires_on - int(now)), "expires_on": expires_on, "issued_token_type": ID_TOKEN_TYPE,
    })


def create_endpoints(core: AgentCore, now: Callable[[], float]) -> Callable[[dict[str, Any], Receive, Send],
                                                                          Awaitable[None]]:
    counts: dict[tuple[str, int], int] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        try:
            status = await handle(scope, send)
        except Refusal as exc:
            status = exc.status
            await _respond(send, exc.status, _error_body(exc.error, exc.description), exc.headers)
        key = (LABELS.get(_path(scope), "other"), status)
        counts[key] = counts.get(key, 0) + 1

    async def handle(scope: dict[str, Any], send: Send) -> int:
        extensions = scope.get("extensions") or {}
        peer: Peer | None = extensions.get("keyless.peer")
        if scope["method"] != "GET":
            raise Refusal(405, "invalid_request", "only GET is allowed", [(b"allow", b"GET")])
        metadata = identity_header = host = None
        headers = scope["headers"]
        if len(headers) > MAX_HEADERS:
            raise Refusal(400, "invalid_request", "too many headers")
        for name, value in headers:
            if name == b"metadata":
                metadata = value
            elif name == b"x-identity-header":
                identity_header = value
            elif name == b"host":
                if host is not None:
                    raise Refusal(400, "invalid_request", "the Host header is repeated")
                host = value
            elif name in PROXY_HEADERS:
                raise Refusal(400, "invalid_request", "proxied requests are refused")
            elif name == b"origin" or name.startswith(b"sec-fetch-"):
                raise Refusal(403, "invalid_request", "browser requests are refused")
            elif (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                raise Refusal(405, "invalid_request", "a request body is not allowed", [(b"allow", b"GET")])
        if peer is None and (host is None or host.lower() not in core.allowed_hosts):
            raise Refusal(400, "invalid_request", "the Host header is not allowed")
        path = _path(scope)
        # Per user: the socket's peer uid, or the uid owning the TCP client socket (kernel socket table).
        uid = peer.uid if peer is not None else extensions.get("keyless.tcp_uid")
        caller = ("uid", str(uid)) if uid is not None else ("tcp", str((scope.get("client") or ("?",))[0]))
        wait = core.limiter.allow(caller)
        if wait:
            raise Refusal(429, "too_many_requests", "slow down", [(b"retry-after", str(int(wait)).encode())])
        target, cache = "resource", core.cache
        body: Callable[[Token, Identity, str, float], bytes]
        if path in (IMDS_PATH, IDENTITY_TOKEN_PATH):
            if metadata is None or metadata.lower() != b"true":
                raise Refusal(400, "invalid_request", "Required metadata header not specified")
            versions, body = IMDS_VERSIONS, imds_body
            if path == IDENTITY_TOKEN_PATH:
                target, cache, body = "audience", core.identity_tokens, identity_token_body
        elif path == APP_SERVICE_PATH:
            secret = core.identity_header().encode()
            if identity_header is None or not hmac.compare_digest(identity_header, secret):
                raise Refusal(401, "unauthorized", "X-IDENTITY-HEADER is missing or wrong")
            versions, body = APP_SERVICE_VERSIONS, app_service_body
        elif path == STATUS_PATH:
            if metadata is None or metadata.lower() != b"true":
                raise Refusal(400, "invalid_request", "Required metadata header not specified")
            await _respond(send, 200, orjson.dumps(core.status()))
            return 200
        elif path == METRICS_PATH:
            await _respond(send, 200, metrics_text(core.status(), counts), base=METRICS_HEADERS)
            return 200
        else:
            raise Refusal(404, "not_found", "no such endpoint")
        params = _query(scope["query_string"])
        version = params.get("api-version")
        if version is None:
            raise Refusal(400, "invalid_request", "Required api-version parameter not specified")
        if version not in versions:
            raise Refusal(400, "invalid_request", "the api-version is not supported")
        resource = _resource(params, target)
        identity = core.entitlements.resolve(_identity_ref(params), peer or tcp_caller(uid),
                                             bound_default=peer is not None)
        if identity is None or core.revoked:
            raise Refusal(400, "invalid_request", NOT_FOUND_IDENTITY)
        token = cache.peek(identity.client_id, resource)
        if token is None:
            token = await fetch(cache, identity, resource, target)
        if peer is not None and not still_same(peer):
            raise Refusal(403, "invalid_request", "the caller could not be identified")
        await _respond(send, 200, body(token, identity, resource, now()))
        return 200

    async def fetch(cache: AgentTokenCache, identity: Identity, resource: str, target: str) -> Token:
        try:
            return await cache.get(identity.client_id, resource)
        except ServerRefused as exc:
            if exc.error == "invalid_client":
                raise Refusal(400, "invalid_request", NOT_FOUND_IDENTITY) from None
            if target == "audience":
                raise Refusal(400, "invalid_audience",
                              "the audience is not on this identity's identity-token allowlist") from None
            raise Refusal(400, "invalid_resource",
                          "the resource is unknown or this identity has no access to it") from None
        except ServerUnavailable:
            raise Refusal(503, "temporarily_unavailable", "the identity server is unreachable; try again",
                          [(b"retry-after", b"5")]) from None

    return app
