"""`client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1).

The presented secret is hashed once (HMAC, about a microsecond) whether or not the client exists,
and compared in constant time with each live secret of the client (catalog L01, L03: the lookup is by
`client_id`, never by secret value). A client that does not exist, or has no secret, still gets one
comparison, against a digest nothing matches, and the store does the same queries for every client
id: an unknown client costs what a wrong secret costs (docs/security.md, "Equal work for unknown and
known clients").

A secret that matches nothing in a *cached* client record is checked once more against a record read
since the request arrived (`FreshClientReads`): a secret created on another replica is usable as soon
as its creation is acknowledged, even before that replica's change notification arrives here. Known
and unknown clients take that second read alike, so the equal-work rule holds.
"""

from __future__ import annotations

from keyless.clock import Clock
from keyless.crypto.secrets import MAX_PRESENTED_LEN, SecretHasher
from keyless.domain.model import ClientRecord, ClientSecret, Tenant
from keyless.domain.ports import DirectoryReader, FreshClientReads
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.errors import InvalidClient, InvalidRequest

BASIC = "client_secret_basic"
POST = "client_secret_post"
_NO_DIGEST = bytes(32)  # compared with when there is nothing to compare with; never an HMAC output in practice


async def verify(
    tenant: Tenant,
    client_id: str,
    presented: str,
    directory: DirectoryReader,
    hasher: SecretHasher,
    clock: Clock,
    *,
    method: str,
    basic: bool = False,
) -> AuthenticatedClient:
    if len(presented) > MAX_PRESENTED_LEN:
        raise InvalidClient(detail="secret_too_long", basic=basic)
    digest = hasher.digest(presented)
    arrived = clock.now()
    record = await directory.get_client(tenant.id, client_id)
    matched = _match(record, digest, hasher)
    if matched is None and isinstance(directory, FreshClientReads):
        record = await directory.get_client_since(tenant.id, client_id, arrived)
        matched = _match(record, digest, hasher)
    if record is None:
        raise InvalidClient(detail="unknown_client", basic=basic)
    now = clock.now()
    if matched is None:
        raise InvalidClient(
            detail="no_secret_registered" if not record.secrets else "wrong_secret", basic=basic
        )
    if not matched.usable_at(now):
        raise InvalidClient(detail="secret_expired", basic=basic)
    if not record.app.enabled:
        raise InvalidClient(detail="client_disabled", basic=basic)
    return AuthenticatedClient(
        app=record.app, method=method, credential_type="secret", credential_id=matched.id, azpacr="1"
    )


def _match(record: ClientRecord | None, digest: bytes, hasher: SecretHasher) -> ClientSecret | None:
    """The live-or-not secret whose digest matches, comparing with every one (constant time each)."""
    if record is None or not record.secrets:
        hasher.matches(digest, _NO_DIGEST)
        return None
    matched = None
    for candidate in record.secrets:
        if hasher.matches(digest, candidate.digest):
            matched = candidate
    return matched


class SecretBasic:
    """`client_secret_basic`: the Authorization header (RFC 6749 §2.3.1); a `client_id` in the body
    too must name the same client."""

    name = BASIC

    def presented(self, ctx: TokenContext, env: TokenEnv) -> bool:
        return ctx.request is not None and ctx.request.basic is not None

    async def authenticate(self, ctx: TokenContext, env: TokenEnv) -> AuthenticatedClient:
        basic = ctx.req.basic
        if basic is None:  # `presented` said otherwise; never reached
            raise InvalidClient(detail="no_client_authentication")
        body_id = ctx.param("client_id")
        if body_id is not None and body_id != basic.client_id:
            raise InvalidRequest("client_id does not match the authenticated client", detail="client_id_mismatch")
        return await verify(ctx.tenant, basic.client_id, basic.secret, env.directory, env.hasher, env.clock,
                            method=BASIC, basic=True)


class SecretPost:
    """`client_secret_post`: `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1)."""

    name = POST

    def presented(self, ctx: TokenContext, env: TokenEnv) -> bool:
        return ctx.param("client_secret") is not None

    async def authenticate(self, ctx: TokenContext, env: TokenEnv) -> AuthenticatedClient:
        presented, client_id = ctx.param("client_secret"), ctx.param("client_id")
        if client_id is None:
            raise InvalidRequest("client_id is required with client_secret", detail="client_id_missing")
        if presented is None:  # `presented` said otherwise; never reached
            raise InvalidClient(detail="no_client_authentication")
        return await verify(ctx.tenant, client_id, presented, env.directory, env.hasher, env.clock, method=POST)
