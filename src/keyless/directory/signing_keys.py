"""Signing-key use cases: publish a new key, retire one in an emergency (docs/security.md, catalog I04).

A new key is published in the JWKS at once and signs only from its activation time, so relying
parties' cached key sets have seen it first; the keys it succeeds stay published until every token
they signed has expired (`keyless.oauth.keyring.key_states`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from keyless.clock import Clock
from keyless.directory.base import UseCases, _nothing, notifying
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.domain.events import SIGNING_KEY_ROTATED, Event
from keyless.domain.model import SigningKey, Tenant
from keyless.domain.ports import SigningKeyStore
from keyless.oauth.keyring import JWKS_MAX_AGE, key_states, new_signing_key

DEFAULT_ACTIVATION_DELAY = 2 * JWKS_MAX_AGE
# Every replica publishes a new key in its JWKS within 1 s of its creation (change notifications,
# docs/deployment.md); a key signs no sooner than twice that, so no replica ever signs a token whose
# `kid` another replica's JWKS does not list yet.
MIN_ACTIVATION_DELAY = 2


class SigningKeyService(UseCases):
    def __init__(self, store: SigningKeyStore, clock: Clock, kek: bytes,
                 on_change: Callable[[], None] = _nothing) -> None:
        super().__init__(clock, on_change)
        self._store = store
        self._kek = kek

    async def keys(self, tenant: Tenant) -> Sequence[SigningKey]:
        return await self._store.signing_keys(tenant.id)

    async def rotate_key(self, tenant: Tenant, *, actor: str, activate_in: int = DEFAULT_ACTIVATION_DELAY,
                         alg: str | None = None) -> SigningKey:
        """Publish a new key now and sign with it from `activate_in` seconds on (at least
        `MIN_ACTIVATION_DELAY`). The keys it succeeds stay in the JWKS until every token they signed
        has expired (`key_states`)."""
        if activate_in < 0:
            raise Invalid("invalid_activation", "activation delay must not be negative")
        if await self._store.signing_keys(tenant.id):  # a tenant's first key signs at once: nobody signs yet
            activate_in = max(activate_in, MIN_ACTIVATION_DELAY)
        now = self._clock.now()
        key = new_signing_key(tenant.id, alg or tenant.signing_alg, self._kek, now=now,
                              activates_at=now + activate_in)
        await self._store.add_signing_key(
            key,
            notifying(self._audit(tenant.id, actor, "key.rotate", "signing_key", key.kid, alg=key.alg,
                                  activates_at=key.activates_at),
                      Event(SIGNING_KEY_ROTATED, tenant.id, now, key.kid,
                            {"kid": key.kid, "alg": key.alg, "activates_at": key.activates_at,
                             "tenant_name": tenant.name, "actor": actor})),
        )
        self._on_change()
        return key

    async def retire_key(self, tenant: Tenant, kid: str, *, actor: str) -> None:
        """Emergency removal (catalog I04): out of the JWKS at once; tokens it signed stop validating."""
        now = self._clock.now()
        keys = await self._store.signing_keys(tenant.id)
        if key_states(keys, now).get(kid, "retired") == "retired":
            raise NotFound("key_not_found", "no such published key")
        remaining = [k if k.kid != kid else replace(k, retire_at=now) for k in keys]
        if "active" not in key_states(remaining, now).values():
            raise Conflict("last_signing_key", "rotate with --activate-in 0 first: this is the only signing key")
        await self._store.retire_signing_key(
            tenant.id, kid, now, self._audit(tenant.id, actor, "key.retire", "signing_key", kid)
        )
        self._on_change()
