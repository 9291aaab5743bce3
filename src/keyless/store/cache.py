"""Short-lived per-process caches in front of the token path's hot reads (directory, federated
credentials): adapters over the store's readers, kept beside them.

The token endpoint must not pay a database round trip per request (DESIGN.md §7). Entries live a
few seconds (`ttl`), negative answers included (bounded, so a spray of random client ids cannot grow
memory), and every write through the directory services in this process clears the cache at
once. Other replicas see a change within twice `ttl` (an expired entry may be served once more while it
refreshes; see `keyless.cache`), or at once through the change feed (`keyless.store.changes`); and a
credential check that fails against a cached client re-reads it once (`get_client_since`), so a
credential added on another replica is never refused for want of the notification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from keyless.cache import Miss, TtlCache
from keyless.clock import Clock
from keyless.domain.federation import FederatedCredential, FederationReader, OwnerType
from keyless.domain.model import Application, ClientRecord, SigningKey, Tenant
from keyless.domain.policies import Policy, PolicyStore, effective
from keyless.domain.ports import DirectoryReader


class CachedDirectory:
    """A `DirectoryReader` that remembers answers for `ttl` seconds."""

    def __init__(self, reader: DirectoryReader, clock: Clock, ttl: float = 5.0) -> None:
        self._reader = reader
        self._tenants: TtlCache[Tenant | None] = TtlCache(clock, ttl, 1_000)
        self._clients: TtlCache[ClientRecord | None] = TtlCache(clock, ttl)
        self._apps: TtlCache[Application | None] = TtlCache(clock, ttl)
        self._resources: TtlCache[Application | None] = TtlCache(clock, ttl)
        self._roles: TtlCache[tuple[str, ...] | None] = TtlCache(clock, ttl)
        self.clears = 0

    def invalidate(self) -> None:
        self.clears += 1
        for cache in (self._tenants, self._clients, self._apps, self._resources, self._roles):
            cache.clear()

    def sizes(self) -> dict[str, int]:
        """Entries per cache (the `keyless_cache_entries` gauge)."""
        return {"tenants": len(self._tenants), "clients": len(self._clients), "applications": len(self._apps),
                "resources": len(self._resources), "roles": len(self._roles)}

    @property
    def rereads(self) -> int:
        """Client records re-read after a failed credential check (`get_client_since`)."""
        return self._clients.fresh_loads

    async def get_tenant(self, name_or_id: str) -> Tenant | None:
        key = name_or_id.lower()
        hit = self._tenants.fresh((key,))
        if hit is not Miss.MISS:
            return hit
        return await self._tenants.get((key,), lambda: self._reader.get_tenant(key))

    async def get_client(self, tenant_id: str, client_id: str) -> ClientRecord | None:
        hit = self._clients.fresh((tenant_id, client_id))
        if hit is not Miss.MISS:
            return hit
        return await self._clients.get((tenant_id, client_id), lambda: self._reader.get_client(tenant_id, client_id))

    async def get_client_since(self, tenant_id: str, client_id: str, since: float) -> ClientRecord | None:
        """`FreshClientReads`: the cached record if it was read at or after `since`, else one new read
        shared by every caller asking at once."""
        return await self._clients.get_fresh(
            (tenant_id, client_id), lambda: self._reader.get_client(tenant_id, client_id), since
        )

    async def get_application(self, tenant_id: str, client_id: str) -> Application | None:
        return await self._apps.get(
            (tenant_id, client_id), lambda: self._reader.get_application(tenant_id, client_id)
        )

    async def find_resource(self, tenant_id: str, identifier: str) -> Application | None:
        hit = self._resources.fresh((tenant_id, identifier))
        if hit is not Miss.MISS:
            return hit
        return await self._resources.get(
            (tenant_id, identifier), lambda: self._reader.find_resource(tenant_id, identifier)
        )

    async def assigned_roles(
        self, tenant_id: str, principal_object_id: str, resource_client_id: str
    ) -> tuple[str, ...] | None:
        hit = self._roles.fresh((tenant_id, principal_object_id, resource_client_id))
        if hit is not Miss.MISS:
            return hit
        return await self._roles.get(
            (tenant_id, principal_object_id, resource_client_id),
            lambda: self._reader.assigned_roles(tenant_id, principal_object_id, resource_client_id),
        )

    async def signing_keys(self, tenant_id: str) -> Sequence[SigningKey]:
        return await self._reader.signing_keys(tenant_id)  # the KeyRing caches these itself


class CachedFederationReader:
    """The token endpoint's view of federated credentials: a few seconds' cache per owner, cleared on
    every change in this process (as `CachedDirectory` does for clients)."""

    def __init__(self, reader: FederationReader, clock: Clock, ttl: float = 5.0) -> None:
        self._reader = reader
        self._cache: TtlCache[Sequence[FederatedCredential]] = TtlCache(clock, ttl)
        self._audiences: TtlCache[frozenset[str]] = TtlCache(clock, ttl)

    def invalidate(self) -> None:
        self._cache.clear()
        self._audiences.clear()

    async def identity_token_audiences(self, tenant_id: str, owner_type: OwnerType, owner_id: str) -> frozenset[str]:
        return await self._audiences.get(
            (tenant_id, owner_type, owner_id),
            lambda: self._reader.identity_token_audiences(tenant_id, owner_type, owner_id),
        )

    async def federated_credentials(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str
    ) -> Sequence[FederatedCredential]:
        return await self._cache.get(
            (tenant_id, owner_type, owner_id),
            lambda: self._reader.federated_credentials(tenant_id, owner_type, owner_id),
        )


class CachedPolicies:
    """The token endpoint's view of credential policies (`keyless.oauth.policy_check`): each tenant's
    stored policies and each client's effective policy, for `ttl` seconds, cleared by every policy
    write in this process and by the change feed from the others."""

    def __init__(self, store: PolicyStore, clock: Clock, ttl: float = 5.0) -> None:
        self._store = store
        self._tenants: TtlCache[Mapping[str | None, Policy]] = TtlCache(clock, ttl, 1_000)
        self._effective: TtlCache[Policy] = TtlCache(clock, ttl)

    def invalidate(self) -> None:
        self._tenants.clear()
        self._effective.clear()

    async def policy(self, tenant_id: str, client_id: str) -> Policy:
        hit = self._effective.fresh((tenant_id, client_id))
        if hit is not Miss.MISS:
            return hit

        async def load() -> Policy:
            stored = await self._tenants.get((tenant_id,), lambda: self._store.policies(tenant_id))
            return effective(stored, client_id)
        return await self._effective.get((tenant_id, client_id), load)
