"""Client authentication at the token endpoint (RFC 6749 §2.3; requirements §1.1).

Exactly one method per request (R-6749-1, catalog A05); every failure is the same `invalid_client`
whatever its cause (A09), with the internal reason kept in `detail` for the sign-in log.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyless.clock import Clock
from keyless.crypto.secrets import SecretHasher
from keyless.domain.model import Tenant
from keyless.domain.ports import DirectoryReader, OneTimeUses
from keyless.oauth.client_auth import federated, private_key_jwt, secret
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.errors import InvalidClient, InvalidRequest
from keyless.oauth.request import TokenRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

__all__ = [
    "ASSERTION_TYPE", "AuthContext", "AuthenticatedClient", "auth_method_of", "authenticate", "claimed_client_id",
]


def auth_method_of(req: TokenRequest) -> str | None:
    """The authentication method a request attempted, for the sign-in log (also when it failed)."""
    if req.basic is not None:
        return secret.BASIC
    if req.get("client_secret") is not None:
        return secret.POST
    if req.get("client_assertion") is not None:
        return private_key_jwt.METHOD
    return None


def claimed_client_id(req: TokenRequest) -> str | None:
    """The client the request says it is, before authentication: for rate limiting and the log."""
    if req.basic is not None:
        return req.basic.client_id
    return req.get("client_id") or private_key_jwt.claimed_subject(req.get("client_assertion"))


@dataclass(frozen=True)
class AuthContext:
    """What client authentication needs beyond the request: storage, keys, time, and the URLs an
    assertion may name as its audience."""

    directory: DirectoryReader
    hasher: SecretHasher
    clock: Clock
    replay: OneTimeUses
    certificates: private_key_jwt.CertificateCache
    issuer: str
    token_endpoints: frozenset[str]
    federation: federated.FederationContext | None = None  # None: federated assertions are refused


async def authenticate(req: TokenRequest, tenant: Tenant, ctx: AuthContext) -> AuthenticatedClient:
    has_assertion = req.get("client_assertion") is not None or req.get("client_assertion_type") is not None
    methods = [req.basic is not None, req.get("client_secret") is not None, has_assertion]
    if sum(methods) > 1:
        raise InvalidRequest("only one client authentication method may be used", detail="multiple_auth_methods")
    if req.basic is not None:
        body_id = req.get("client_id")
        if body_id is not None and body_id != req.basic.client_id:
            raise InvalidRequest("client_id does not match the authenticated client", detail="client_id_mismatch")
        return await secret.verify(
            tenant, req.basic.client_id, req.basic.secret, ctx.directory, ctx.hasher, ctx.clock,
            method=secret.BASIC, basic=True,
        )
    presented = req.get("client_secret")
    if presented is not None:
        client_id = req.get("client_id")
        if client_id is None:
            raise InvalidRequest("client_id is required with client_secret", detail="client_id_missing")
        return await secret.verify(tenant, client_id, presented, ctx.directory, ctx.hasher, ctx.clock,
                                   method=secret.POST)
    if has_assertion:
        assertion = req.get("client_assertion")
        if req.get("client_assertion_type") != ASSERTION_TYPE or assertion is None:
            raise InvalidRequest("client_assertion_type must be jwt-bearer with a client_assertion",
                                 detail="assertion_type")
        parsed = private_key_jwt.parse(assertion)
        client_id = req.get("client_id")
        if ctx.federation is not None and client_id is not None and federated.is_federated(parsed[1], client_id):
            return await federated.verify(assertion, parsed[0], parsed[1], client_id, tenant, ctx.directory,
                                          ctx.replay, ctx.clock, ctx.federation)
        return await private_key_jwt.verify(
            assertion, client_id, tenant, ctx.directory, ctx.replay, ctx.clock, ctx.certificates,
            issuer=ctx.issuer, token_endpoints=ctx.token_endpoints, parsed=parsed,
        )
    raise InvalidClient(detail="no_client_authentication")
