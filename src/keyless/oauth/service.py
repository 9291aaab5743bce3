"""The token endpoint as ordered steps over one request context: raw request in, status/headers/body
out, sign-in event recorded (issue 12 scope 3; node-oidc-provider's `actions/` are the model).

The steps, in this order, each free to refuse with an `OAuthErrorResponse`:

1. `request`: what the HTTP shell refused (body too large, a repeated header), then the request's
   shape (`keyless.oauth.request`); the client assertion is decoded here, once.
2. `grant_type`: present, and one of the registered grants (`keyless.oauth.grants.registry`).
3. `throttle`: the failure throttle, before any credential work (K02; only the caller's own source
   can be refused there, see keyless.oauth.ratelimit).
4. `client_auth`: exactly one registered method authenticates the client
   (`keyless.oauth.client_auth.registry`); a failure feeds the throttle.
5. whatever `after_client_auth` adds (sign-in policies), in the order given.
6. `grant`: the grant authorizes the resource and issues the token.

Every outcome, success or failure, goes to the sign-in sink, which batches writes off the request
path; only a request for a tenant that does not exist is answered without a record (the log is per
tenant).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from keyless import text
from keyless.clock import Clock
from keyless.crypto.secrets import SecretHasher
from keyless.domain.model import SignInEvent, Tenant
from keyless.domain.ports import DirectoryReader, OneTimeUses
from keyless.oauth.client_auth.assertion import ClientAssertion
from keyless.oauth.client_auth.certificates import CertificateCache
from keyless.oauth.client_auth.registry import DEFAULT_METHODS, ClientAuthMethod, authenticate
from keyless.oauth.context import FederationContext, TokenContext, TokenEnv
from keyless.oauth.deferral import Deferral, at_once
from keyless.oauth.errors import InvalidClient, InvalidRequest, OAuthErrorResponse, RateLimited, UnsupportedGrantType
from keyless.oauth.grants.registry import DEFAULT_GRANTS, Grant
from keyless.oauth.keyring import KeyRing
from keyless.oauth.metadata import issuer
from keyless.oauth.ratelimit import FailureThrottle
from keyless.oauth.request import TokenHttpRequest, parse_token_request, transport_refusal

NO_STORE: Mapping[str, str] = MappingProxyType({"Cache-Control": "no-store", "Pragma": "no-cache"})

# A step refuses by raising. One that never waits is a plain function returning None (the token path
# then builds no coroutine for it; issue 18); one that may wait returns its awaitable.
Step = Callable[[TokenContext, TokenEnv], Awaitable[None] | None]


class SignInSink(Protocol):
    def record(self, event: SignInEvent) -> None:
        """Queue an event; must not block or fail the request."""
        ...


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class TokenResult:
    """What the HTTP shell sends. `headers` is the shared, read-only `NO_STORE` unless the answer needs
    more (an error's `WWW-Authenticate`, `Retry-After`, `Allow`), so a shell may recognise it by identity."""

    status: int
    body: dict[str, object]
    headers: Mapping[str, str] = field(default_factory=lambda: NO_STORE)
    error: OAuthErrorResponse | None = None


def error_result(err: OAuthErrorResponse) -> TokenResult:
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
        grants: Mapping[str, Grant] = DEFAULT_GRANTS,
        auth_methods: Mapping[str, ClientAuthMethod] = DEFAULT_METHODS,
        after_client_auth: Sequence[tuple[str, Step]] = (),
        defer: Deferral = at_once,
    ) -> None:
        self._directory = directory
        self._keyring = keyring
        self._hasher = hasher
        self._clock = clock
        self._sink = sink
        self._replay = replay
        self._base_url = base_url
        self._certificates = CertificateCache()
        self._envs: dict[str, tuple[Tenant, TokenEnv]] = {}  # per URL form, with the tenant object it is for
        self._throttle = throttle
        self._federation = federation
        self._grants = grants
        self._auth_methods = auth_methods
        self._defer = defer
        self.steps: tuple[tuple[str, Step], ...] = (
            ("request", self._parse),
            ("grant_type", self._grant_type),
            ("throttle", self._check_throttle),
            ("client_auth", self._authenticate),
            *after_client_auth,
            ("grant", self._grant),
        )

    def _env(self, tenant: Tenant, tenant_ref: str) -> TokenEnv:
        """The steps' environment for `tenant` as addressed by `tenant_ref`, kept while the directory
        cache hands out this same tenant object (compared by identity: hashing a tenant's every field
        per request cost more than building an environment once per cache refresh)."""
        kept = self._envs.get(tenant_ref)
        if kept is not None and kept[0] is tenant:
            return kept[1]
        endpoints = {f"{self._base_url}/{ref}/oauth2/v2.0/token" for ref in (tenant.id, tenant.name, tenant_ref)}
        env = TokenEnv(
            directory=self._directory, hasher=self._hasher, clock=self._clock, replay=self._replay,
            certificates=self._certificates, keyring=self._keyring, issuer=issuer(self._base_url, tenant),
            token_endpoints=frozenset(endpoints), federation=self._federation, defer=self._defer,
        )
        if len(self._envs) >= 1024:
            self._envs.clear()
        self._envs[tenant_ref] = (tenant, env)
        return env

    async def handle(self, tenant_ref: str, http: TokenHttpRequest) -> TokenResult:
        tenant = await self._directory.get_tenant(tenant_ref)
        if tenant is None:
            return error_result(transport_refusal(http) or InvalidRequest("unknown tenant", detail="unknown_tenant"))
        ctx = TokenContext(tenant=tenant, http=http)
        env = self._env(tenant, tenant_ref)
        try:
            for _name, step in self.steps:
                waiting = step(ctx, env)
                if waiting is not None:
                    await waiting
        except OAuthErrorResponse as err:
            self._record(ctx, env, err)
            return error_result(err)
        self._record(ctx, env, None)
        return TokenResult(status=200, body=ctx.response)

    def _parse(self, ctx: TokenContext, env: TokenEnv) -> None:
        refused = transport_refusal(ctx.http)
        if refused is not None:
            raise refused
        ctx.request = parse_token_request(ctx.http)
        assertion = ctx.request.get("client_assertion")
        if assertion is not None:
            ctx.assertion = ClientAssertion.decode(assertion)

    def _grant_type(self, ctx: TokenContext, env: TokenEnv) -> None:
        grant_type = ctx.param("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required", detail="grant_type_missing")
        if grant_type not in self._grants:
            raise UnsupportedGrantType(detail="grant_type_unsupported")

    def _check_throttle(self, ctx: TokenContext, env: TokenEnv) -> None:
        wait = self._throttle.retry_after(ctx.http.source, ctx.tenant.id, ctx.claimed_client_id())
        if wait:
            raise RateLimited(wait, detail="too_many_failures")

    async def _authenticate(self, ctx: TokenContext, env: TokenEnv) -> None:
        try:
            ctx.client = await authenticate(ctx, env, self._auth_methods)
        except InvalidClient:
            self._throttle.failed(ctx.http.source, ctx.tenant.id, ctx.claimed_client_id())
            raise

    def _grant(self, ctx: TokenContext, env: TokenEnv) -> Awaitable[None]:
        return self._grants[ctx.req.get("grant_type") or ""].issue(ctx, env)

    def _attempted_method(self, ctx: TokenContext, env: TokenEnv) -> str | None:
        """The method a request presented, also when it failed before client authentication."""
        if ctx.method is None and ctx.request is not None:
            ctx.method = next((m.name for m in self._auth_methods.values() if m.presented(ctx, env)), None)
        return ctx.method

    def _record(self, ctx: TokenContext, env: TokenEnv, err: OAuthErrorResponse | None) -> None:
        client = ctx.client
        if client is not None:
            method: str | None = client.method
        elif isinstance(err, InvalidClient) and err.auth_method:
            method = err.auth_method
        else:
            method = self._attempted_method(ctx, env)
        self._sink.record(
            SignInEvent(
                time=self._clock.now(),
                tenant_id=ctx.tenant.id,
                client_id=text.stored(ctx.claimed_client_id(), 64),
                credential_id=client.credential_id if client else None,
                credential_type=client.credential_type if client else None,
                resource=ctx.resource,
                result="failure" if err else "success",
                error=err.error if err else None,
                detail=err.detail[:256] if err else ctx.note,
                source=ctx.http.source,
                token_id=ctx.token_id,
                grant_type=text.stored(ctx.param("grant_type"), 64),
                auth_method=method,
            )
        )
