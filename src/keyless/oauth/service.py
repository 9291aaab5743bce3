"""The token endpoint as one function: raw request in, status/headers/body out, sign-in event recorded.

Order of checks: request shape and grant type, then the failure throttle (before any credential
work, K02; only the caller's own source can be refused there, see keyless.oauth.ratelimit), then
client authentication, then authorization of the resource. Every outcome, success or failure, goes
to the sign-in sink, which batches writes off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from keyless import text
from keyless.clock import Clock
from keyless.crypto.secrets import SecretHasher
from keyless.domain.federation import owner_type_of
from keyless.domain.model import SignInEvent, Tenant
from keyless.domain.ports import DirectoryReader, OneTimeUses
from keyless.oauth import tokens
from keyless.oauth.client_auth import (
    AuthContext,
    AuthenticatedClient,
    auth_method_of,
    authenticate,
    claimed_client_id,
)
from keyless.oauth.client_auth.federated import FederationContext
from keyless.oauth.client_auth.private_key_jwt import CertificateCache
from keyless.oauth.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    RateLimited,
    UnsupportedGrantType,
)
from keyless.oauth.federation.identity_tokens import (
    IDENTITY_TOKEN_LIFETIME,
    ISSUED_TOKEN_TYPE,
    identity_token_claims,
    mint_identity_token,
)
from keyless.oauth.grants import client_credentials
from keyless.oauth.keyring import KeyRing
from keyless.oauth.metadata import issuer
from keyless.oauth.policy_check import SignInPolicy
from keyless.oauth.ratelimit import FailureThrottle
from keyless.oauth.request import TokenHttpRequest, TokenRequest, parse_token_request
from keyless.oauth.scope import requested_resource

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class SignInSink(Protocol):
    def record(self, event: SignInEvent) -> None:
        """Queue an event; must not block or fail the request."""
        ...


@dataclass(frozen=True)
class TokenResult:
    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=lambda: dict(NO_STORE))
    error: OAuthError | None = None


def error_result(err: OAuthError) -> TokenResult:
    headers = dict(NO_STORE)
    if isinstance(err, InvalidClient) and err.basic:
        headers["WWW-Authenticate"] = 'Basic realm="keyless"'
    if isinstance(err, RateLimited):
        headers["Retry-After"] = str(err.retry_after)
    if err.status == 405:
        headers["Allow"] = "POST"
    return TokenResult(status=err.status, body=dict(err.body()), headers=headers, error=err)


class TokenService:
    def __init__(
        self,
        *,
        directory: DirectoryReader,
        keyring: KeyRing,
        hasher: SecretHasher,
        clock: Clock,
        sink: SignInSink,
        replay: OneTimeUses,
        base_url: str,
        throttle: FailureThrottle,
        federation: FederationContext | None = None,
        policy: SignInPolicy | None = None,
    ) -> None:
        self._policy = policy
        self._directory = directory
        self._keyring = keyring
        self._hasher = hasher
        self._clock = clock
        self._sink = sink
        self._replay = replay
        self._base_url = base_url
        self._certificates = CertificateCache()
        self._contexts: dict[tuple[Tenant, str], AuthContext] = {}  # per tenant (as currently stored) and URL form
        self._throttle = throttle
        self._federation = federation

    def _auth_context(self, tenant: Tenant, tenant_ref: str) -> AuthContext:
        key = (tenant, tenant_ref)
        ctx = self._contexts.get(key)
        if ctx is None:
            endpoints = {f"{self._base_url}/{ref}/oauth2/v2.0/token" for ref in (tenant.id, tenant.name, tenant_ref)}
            ctx = AuthContext(
                directory=self._directory, hasher=self._hasher, clock=self._clock, replay=self._replay,
                certificates=self._certificates, issuer=issuer(self._base_url, tenant),
                token_endpoints=frozenset(endpoints), federation=self._federation,
            )
            if len(self._contexts) >= 1024:
                self._contexts.clear()
            self._contexts[key] = ctx
        return ctx

    async def handle(self, tenant_ref: str, http: TokenHttpRequest) -> TokenResult:
        tenant = await self._directory.get_tenant(tenant_ref)
        if tenant is None:
            return error_result(InvalidRequest("unknown tenant", detail="unknown_tenant"))
        req: TokenRequest | None = None
        client: AuthenticatedClient | None = None
        resource: str | None = None
        noted: str | None = None  # audit-mode policy violations, for the sign-in log
        try:
            req = parse_token_request(http)
            grant_type = req.get("grant_type")
            if grant_type is None:
                raise InvalidRequest("grant_type is required", detail="grant_type_missing")
            if grant_type != client_credentials.GRANT_TYPE:
                raise UnsupportedGrantType(detail="grant_type_unsupported")
            client = await self._authenticate(tenant, tenant_ref, req, http.source)
            if self._policy is not None:
                noted = await self._policy.check(tenant, client, http.source, basic=req.basic is not None)
            try:
                grant = await client_credentials.authorize(
                    client, tenant.id, req.get("scope"), req.get("resource"), self._directory
                )
            except (InvalidScope, InvalidTarget) as refused:
                outbound = await self._identity_audience(refused, tenant, client, req)
                if outbound is None:
                    raise
                resource = outbound
                return await self._identity_token(tenant, req, client, outbound, http.source, noted)
            resource = grant.resource.identifier_uri or grant.resource.client_id
            key = await self._keyring.signer(tenant.id)
            now = int(self._clock.now())
            token_id = tokens.new_token_id()
            claims = tokens.access_token_claims(
                issuer=issuer(self._base_url, tenant), tenant=tenant, client=client.app, audience=grant.audience,
                roles=grant.roles, azpacr=client.azpacr, now=now, lifetime=tenant.token_lifetime,
                token_id=token_id, extra=tokens.managed_identity_claims(client.app),
            )
            access_token = tokens.mint(key, claims)
        except OAuthError as err:
            self._record(tenant, req, client, resource, http.source, err, None)
            return error_result(err)
        self._record(tenant, req, client, resource, http.source, None, token_id, noted)
        body: dict[str, object] = {
            "token_type": "Bearer",
            "expires_in": tenant.token_lifetime,
            "ext_expires_in": tenant.token_lifetime,
            "access_token": access_token,
        }
        return TokenResult(status=200, body=body)

    async def _identity_audience(
        self, refused: OAuthError, tenant: Tenant, client: AuthenticatedClient, req: TokenRequest
    ) -> str | None:
        """The audience of an outbound identity token, when the request names no resource of the tenant
        but an audience on the client's allowlist; only looked at once the resource lookup failed, so
        access-token requests pay nothing for it."""
        if self._federation is None or refused.detail != "resource_unknown":
            return None
        audience = requested_resource(req.get("scope"), req.get("resource")).identifier
        allowed = await self._federation.credentials.identity_token_audiences(
            tenant.id, owner_type_of(client.app), client.app.client_id)
        return audience if audience in allowed else None

    async def _identity_token(
        self, tenant: Tenant, req: TokenRequest, client: AuthenticatedClient, audience: str, source: str | None,
        noted: str | None = None,
    ) -> TokenResult:
        key = await self._keyring.signer(tenant.id)
        token_id = tokens.new_token_id()
        claims = identity_token_claims(
            issuer=issuer(self._base_url, tenant), tenant=tenant, client=client.app, audience=audience,
            now=int(self._clock.now()), token_id=token_id,
        )
        token = mint_identity_token(key, claims)
        self._record(tenant, req, client, audience, source, None, token_id, noted)
        body: dict[str, object] = {
            "token_type": "Bearer",
            "expires_in": IDENTITY_TOKEN_LIFETIME,
            "access_token": token,
            "issued_token_type": ISSUED_TOKEN_TYPE,
        }
        return TokenResult(status=200, body=body)

    async def _authenticate(
        self, tenant: Tenant, tenant_ref: str, req: TokenRequest, source: str | None
    ) -> AuthenticatedClient:
        claimed = claimed_client_id(req)
        wait = self._throttle.retry_after(source, tenant.id, claimed)
        if wait:
            raise RateLimited(wait, detail="too_many_failures")
        try:
            return await authenticate(req, tenant, self._auth_context(tenant, tenant_ref))
        except InvalidClient:
            self._throttle.failed(source, tenant.id, claimed)
            raise

    def _record(
        self,
        tenant: Tenant,
        req: TokenRequest | None,
        client: AuthenticatedClient | None,
        resource: str | None,
        source: str | None,
        err: OAuthError | None,
        token_id: str | None,
        noted: str | None = None,
    ) -> None:
        claimed = client.app.client_id if client else (claimed_client_id(req) if req else None)
        self._sink.record(
            SignInEvent(
                time=self._clock.now(),
                tenant_id=tenant.id,
                client_id=text.stored(claimed, 64),
                credential_id=client.credential_id if client else None,
                credential_type=client.credential_type if client else None,
                resource=resource,
                result="failure" if err else "success",
                error=err.error if err else None,
                detail=err.detail[:256] if err else noted,
                source=source,
                token_id=token_id,
                grant_type=text.stored(req.get("grant_type"), 64) if req else None,
                auth_method=client.method if client else (
                    err.auth_method if isinstance(err, InvalidClient) and err.auth_method
                    else auth_method_of(req) if req else None),
            )
        )
