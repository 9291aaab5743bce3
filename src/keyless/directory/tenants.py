"""Tenant use cases: create a tenant (with its first signing key) and change its settings within the
limits docs/security.md states (token lifetime, secret and certificate lifetimes, audience mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from keyless.clock import Clock
from keyless.directory import validation as v
from keyless.directory.base import UseCases, _nothing
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.directory.policies import PolicyService
from keyless.directory.signing_keys import SigningKeyService
from keyless.domain.model import Tenant
from keyless.domain.ports import TenantStore
from keyless.ids import new_guid
from keyless.oauth.keyring import MAX_TOKEN_LIFETIME

MIN_TOKEN_LIFETIME = 300
HARD_MAX_SECRET_LIFETIME = 730 * 86400


class TenantService(UseCases):
    def __init__(self, store: TenantStore, keys: SigningKeyService, clock: Clock,
                 on_change: Callable[[], None] = _nothing, policies: PolicyService | None = None) -> None:
        super().__init__(clock, on_change)
        self._store = store
        self._keys = keys
        self._policies = policies

    async def tenant(self, ref: str) -> Tenant:
        tenant = await self._store.get_tenant(ref)
        if tenant is None:
            raise NotFound("tenant_not_found", "no such tenant")
        return tenant

    async def create_tenant(self, name: str, *, actor: str, tenant_id: str | None = None,
                            signing_alg: str = "RS256") -> Tenant:
        name = v.tenant_name(name)
        if signing_alg not in {"RS256", "ES256"}:
            raise Invalid("invalid_signing_alg", "signing algorithm must be RS256 or ES256")
        if await self._store.get_tenant(name) is not None:
            raise Conflict("tenant_exists", "a tenant with that name exists")
        now = self._clock.now()
        tenant = Tenant(id=tenant_id or new_guid(), name=name, signing_alg=signing_alg, created_at=now)
        await self._store.create_tenant(tenant, self._audit(tenant.id, actor, "tenant.create", "tenant", tenant.id,
                                                            name=name, signing_alg=signing_alg))
        await self._keys.rotate_key(tenant, actor=actor, activate_in=0)
        return tenant

    async def update_tenant(
        self, tenant: Tenant, *, actor: str, token_lifetime: int | None = None, signing_alg: str | None = None,
        default_secret_lifetime: int | None = None, max_secret_lifetime: int | None = None,
        assertion_audience: str | None = None, max_certificate_lifetime: int | None = None,
    ) -> Tenant:
        changes: dict[str, object] = {}
        if token_lifetime is not None:
            if not MIN_TOKEN_LIFETIME <= token_lifetime <= MAX_TOKEN_LIFETIME:
                raise Invalid("invalid_token_lifetime", "token lifetime must be between 5 minutes and 24 hours")
            changes["token_lifetime"] = token_lifetime
        if signing_alg is not None:
            if signing_alg not in {"RS256", "ES256"}:
                raise Invalid("invalid_signing_alg", "signing algorithm must be RS256 or ES256")
            changes["signing_alg"] = signing_alg
        if max_secret_lifetime is not None:
            if not 86400 <= max_secret_lifetime <= HARD_MAX_SECRET_LIFETIME:
                raise Invalid("invalid_secret_lifetime", "maximum secret lifetime must be 1 day to 2 years")
            changes["max_secret_lifetime"] = max_secret_lifetime
        if default_secret_lifetime is not None:
            changes["default_secret_lifetime"] = default_secret_lifetime
        if max_certificate_lifetime is not None:
            if not 86400 <= max_certificate_lifetime <= 10 * 365 * 86400:
                raise Invalid("invalid_certificate_lifetime", "maximum certificate lifetime must be 1 day to 10 years")
            changes["max_certificate_lifetime"] = max_certificate_lifetime
        if assertion_audience is not None:
            if assertion_audience not in {"entra", "strict"}:
                raise Invalid("invalid_audience_mode", "assertion audience mode must be entra or strict")
            changes["assertion_audience"] = assertion_audience
            if self._policies is not None:
                await self._policies.check_audience_mode(tenant, assertion_audience)
        updated = replace(tenant, **changes)  # type: ignore[arg-type]
        if not 3600 <= updated.default_secret_lifetime <= updated.max_secret_lifetime:
            raise Invalid("invalid_secret_lifetime", "default secret lifetime must be 1 hour to the maximum")
        await self._store.update_tenant(updated, self._audit(tenant.id, actor, "tenant.update", "tenant",
                                                             tenant.id, **changes))
        if updated.signing_alg != tenant.signing_alg:
            # A new algorithm needs a new key: published now, signing once JWKS caches have seen it.
            await self._keys.rotate_key(updated, actor=actor)
        self._on_change()
        return updated
