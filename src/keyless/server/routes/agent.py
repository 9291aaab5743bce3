"""`/{tenant}/agent/v1/…`: what host agents call besides the token endpoint.

- `enroll`: a join token and a CSR (the key pair was made on the host) buy the host's first
  certificate from the local CA.
- `renew`: a new CSR, authenticated by an assertion signed with the current host key, buys the
  next certificate (the agent renews at half the lifetime; a removed host cannot).
- `host`: the identities the host may act for and its workload bindings, for the agent to enforce.

Authenticated calls carry a `client_assertion` (RFC 7523, `iss` = `sub` = the host's system-assigned
identity) in a JSON body: the same verifier as the token endpoint (key from the registered host
certificate only, single-use `jti`), so agent authentication has no second code path.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyless import text
from keyless.directory.errors import DirectoryError
from keyless.directory.hosts import Enrollment, HostService, JoinRefused
from keyless.domain.identities import Host
from keyless.domain.model import Tenant
from keyless.oauth.client_auth.certificates import CertificateCache
from keyless.oauth.client_auth.private_key_jwt import verify as verify_assertion
from keyless.oauth.errors import OAuthErrorResponse
from keyless.ratelimit import TokenBuckets
from keyless.server.context import ServerContext
from keyless.server.routes.common import BodyTooLarge, ctx_of, json_response, read_capped

log = logging.getLogger("keyless.agent_api")
MAX_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store"}
_certificates = CertificateCache()


def _limiter(request: Request) -> TokenBuckets:
    """Failed enrollments and agent authentications per source, with the token endpoint's budget
    (catalog K01): join tokens and host keys cannot be guessed, but nobody gets to try for free."""
    state = request.app.state
    found: TokenBuckets | None = getattr(state, "agent_failures", None)
    if found is None:
        ctx = ctx_of(request)
        s = ctx.settings
        found = TokenBuckets(ctx.clock, capacity=s.source_failure_burst, refill_per_second=s.source_failure_rate)
        state.agent_failures = found
    return found


def _throttled(request: Request) -> Response | None:
    wait = _limiter(request).retry_after(_source(request))
    if not wait:
        return None
    return json_response({"error": "invalid_request", "error_description": "rate limited"}, 429,
                         {**NO_STORE, "Retry-After": str(wait)})


def _source(request: Request) -> tuple[str, ...]:
    return ("agent-src", request.client.host if request.client else "?")


def _error(status: int, error: str, description: str) -> Response:
    """Every error of these routes; the description held to RFC 6749 §5.2's set (keyless.text)."""
    return json_response({"error": error, "error_description": text.description(description)}, status,
                         dict(NO_STORE))


def _hosts(ctx: ServerContext) -> HostService:
    if ctx.hosts is None:
        raise RuntimeError("the server context has no host service")
    return ctx.hosts


async def _json_body(request: Request) -> dict[str, Any] | Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _error(400, "invalid_request", "the body must be application/json")
    try:
        raw = await read_capped(request, MAX_BODY)
        body = orjson.loads(raw)
    except BodyTooLarge:
        return _error(413, "invalid_request", "request body too large")
    except orjson.JSONDecodeError:
        return _error(400, "invalid_request", "the body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "invalid_request", "the body must be a JSON object")
    return body


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


def _enrollment_body(ctx: ServerContext, tenant: Tenant, done: Enrollment) -> dict[str, Any]:
    return {
        "tenant_id": tenant.id, "host_id": done.host.id, "host_name": done.host.name,
        "system_client_id": done.host.system_client_id, "certificate": done.certificate_pem.decode("ascii"),
        "not_before": done.certificate.not_before, "not_after": done.certificate.not_after,
        "issuer": ctx.issuer(tenant), "token_endpoint": f"{ctx.base_url}/{tenant.id}/oauth2/v2.0/token",
    }


async def enroll(request: Request) -> Response:
    ctx = ctx_of(request)
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    tenant = await ctx.directory.get_tenant(request.path_params["tenant"])
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    token, csr = _string(body, "join_token"), _string(body, "csr")
    if tenant is None or token is None or csr is None:
        return _error(400, "invalid_request", "tenant, join_token and csr are required")
    try:
        done = await _hosts(ctx).enroll(tenant, token, csr.encode("ascii", "replace"), ca=ctx.ca(),
                                        days=ctx.settings.host_certificate_days)
    except JoinRefused:
        _limiter(request).take(_source(request))
        log.info("enrollment refused", extra={"event": "host_enroll_refused"})
        return _error(400, "invalid_grant", "the join token is invalid, expired or already used")
    except DirectoryError as exc:
        return _error(400, "invalid_request", exc.message)
    log.info("host enrolled", extra={"event": "host_enrolled", "host_id": done.host.id})
    return json_response(_enrollment_body(ctx, tenant, done), 200, dict(NO_STORE))


async def _authenticated(request: Request) -> tuple[ServerContext, Tenant, Host, str, dict[str, Any]] | Response:
    ctx = ctx_of(request)
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    tenant = await ctx.directory.get_tenant(request.path_params["tenant"])
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    assertion = _string(body, "client_assertion")
    if tenant is None or assertion is None:
        _limiter(request).take(_source(request))
        return _error(401, "invalid_client", "client authentication failed")
    endpoints = frozenset(f"{ctx.base_url}/{ref}/oauth2/v2.0/token" for ref in (tenant.id, tenant.name))
    try:
        client = await verify_assertion(assertion, None, tenant, ctx.directory, ctx.store, ctx.clock, _certificates,
                                        issuer=ctx.issuer(tenant), token_endpoints=endpoints)
    except OAuthErrorResponse as exc:
        _limiter(request).take(_source(request))
        log.info("agent authentication refused", extra={"event": "agent_auth_refused", "detail": exc.detail})
        return _error(401, "invalid_client", "client authentication failed")
    host = await _hosts(ctx).host_for_identity(tenant, client.app.client_id)
    if host is None:  # an assertion for a user-assigned identity does not speak for a host
        _limiter(request).take(_source(request))
        return _error(401, "invalid_client", "client authentication failed")
    if ctx.contacts is not None and client.credential_id:  # no I/O here: written in batches
        ctx.contacts.record((client.credential_id, ctx.clock.now(), request.client.host if request.client else None))
    return ctx, tenant, host, client.credential_id, body


async def renew(request: Request) -> Response:
    auth = await _authenticated(request)
    if isinstance(auth, Response):
        return auth
    ctx, tenant, host, used, body = auth
    csr = _string(body, "csr")
    if csr is None:
        return _error(400, "invalid_request", "csr is required")
    try:
        done = await _hosts(ctx).renew(tenant, host, used, csr.encode("ascii", "replace"), ca=ctx.ca(),
                                       days=ctx.settings.host_certificate_days)
    except DirectoryError as exc:
        return _error(400, "invalid_request", exc.message)
    log.info("host certificate renewed", extra={"event": "host_renewed", "host_id": host.id})
    return json_response(_enrollment_body(ctx, tenant, done), 200, dict(NO_STORE))


async def host_view(request: Request) -> Response:
    auth = await _authenticated(request)
    if isinstance(auth, Response):
        return auth
    ctx, tenant, host, _, _ = auth
    service = _hosts(ctx)
    identities = await service.host_identities(host)
    bindings = await service.list_bindings(tenant, host=host)
    return json_response({
        "tenant_id": tenant.id, "host_id": host.id, "host_name": host.name,
        "identities": [
            {"client_id": i.client_id, "object_id": i.object_id, "name": i.name, "kind": i.kind,
             "resource_id": i.resource_id}
            for i in identities
        ],
        "bindings": [
            {"id": b.id, "identity_client_id": b.identity_client_id, "uid": b.uid, "gid": b.gid, "exe": b.exe,
             "unit": b.unit}
            for b in bindings
        ],
    }, 200, dict(NO_STORE))
