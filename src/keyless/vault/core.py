"""What the vault use cases share (keyless.vault.service): the store, the clock and the key-encryption
key, the per-process read caches and their invalidation, the audit event builder, finding a vault,
its data keys, and the caller's access.

Reads are served from short-lived per-process caches (vaults, grants, keys, sealed versions — never a
plaintext value), cleared by every write through this process; another replica sees a change within
twice `cache_ttl`, the same promise the directory makes for grants and credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from keyless.cache import TtlCache
from keyless.clock import Clock
from keyless.domain.model import AuditEvent
from keyless.vault import envelope, names
from keyless.vault import model as m
from keyless.vault.access import Access
from keyless.vault.errors import (
    BadParameter,
    Forbidden,
    SecretNotFound,
    Unreadable,
    VaultNotFound,
)
from keyless.vault.ports import VaultStore

DEFAULT_PAGE = 25
MAX_PAGE = 25
REWRAP_BATCH = 500
SEALED_CACHE = 4096


def new_version_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class _Keys:
    active: str
    keys: Mapping[str, bytes]


class VaultCore:
    def __init__(self, store: VaultStore, clock: Clock, kek: bytes, *,
                 audit_sink: Callable[[AuditEvent], None], cache_ttl: float = 5.0) -> None:
        self._store = store
        self._clock = clock
        self._kek = kek
        self._sink = audit_sink
        ttl = max(cache_ttl, 0.001)
        self._vaults: TtlCache[m.Vault | None] = TtlCache(clock, ttl, 10_000)
        self._access: TtlCache[Access] = TtlCache(clock, ttl, 50_000)
        self._keys: TtlCache[_Keys] = TtlCache(clock, ttl, 10_000)
        # Sealed versions (ciphertext only, never a plaintext value) for the read path: a database round
        # trip was half the cost of a read. Bounded by count: at most SEALED_CACHE times 25 KiB.
        self._sealed: TtlCache[m.SealedVersion | None] = TtlCache(clock, ttl, SEALED_CACHE)
        self._deks = envelope.DataKeys(SEALED_CACHE)  # their unwrapped data keys (the read's first AES-GCM)
        # Set by the server to publish this process's writes to the other replicas (keyless.store.changes).
        self.on_change: Callable[[], None] = lambda: None

    def invalidate(self) -> None:
        for cache in (self._vaults, self._access, self._keys, self._sealed):
            cache.clear()
        self._deks.clear()

    def _wrote(self) -> None:
        """Vaults, grants or keys changed through this process: clear here, tell the other replicas."""
        self.invalidate()
        self.on_change()

    def _changed(self) -> None:
        """A secret changed through this process: its next read must not come from the cache here, nor
        on the other replicas."""
        self._sealed.clear()
        self._deks.clear()
        self.on_change()

    def _audit(self, tenant_id: str, actor: str, action: str, target_type: str, target_id: str,
               **details: object) -> AuditEvent:
        return AuditEvent(time=self._clock.now(), tenant_id=tenant_id, actor=actor, action=action,
                          target_type=target_type, target_id=target_id, details=dict(details))

    # -- vaults ------------------------------------------------------------------------------------
    async def find(self, name: str) -> m.Vault:
        """The vault a request addresses (any tenant): its existence is public, like a DNS name."""
        try:
            key = names.vault_name(name)
        except BadParameter:
            raise VaultNotFound("no such vault") from None
        vault = await self._vaults.get(key, lambda: self._store.get_vault(key))
        if vault is None:
            raise VaultNotFound("no such vault")
        return vault

    async def vault(self, tenant_id: str, name: str) -> m.Vault:
        vault = await self.find(name)
        if vault.tenant_id != tenant_id:
            raise VaultNotFound("no such vault")
        return vault

    async def _load_keys(self, vault: m.Vault) -> _Keys:
        async def load() -> _Keys:
            rows = await self._store.vault_keys(vault.id)
            if not rows:
                raise VaultNotFound("the vault has no key")
            opened = {k.id: envelope.open_vault_key(self._kek, k.sealed, vault.tenant_id, vault.id, k.id)
                      for k in rows}
            return _Keys(active=rows[-1].id, keys=opened)

        return await self._keys.get(vault.id, load)

    async def _key(self, vault: m.Vault, key_id: str) -> bytes:
        keys = await self._load_keys(vault)
        if key_id not in keys.keys:  # rotated by another replica since we cached
            self._keys.clear()
            keys = await self._load_keys(vault)
        try:
            return keys.keys[key_id]
        except KeyError:
            raise Unreadable("a stored data key names an unknown vault key") from None

    # -- access ------------------------------------------------------------------------------------
    async def access(self, vault: m.Vault, who: m.Principal) -> Access:
        if who.tenant_id != vault.tenant_id:
            return Access.of(())

        async def load() -> Access:
            return Access.of(await self._store.grants(vault.id, who.object_id))

        return await self._access.get((vault.id, who.object_id), load)

    async def _require(self, vault: m.Vault, who: m.Principal, name: str, role: str) -> str:
        """The secret's key once the caller may `role` it: 404 if it sees nothing of it, else 403."""
        key = names.secret_key(name)
        access = await self.access(vault, who)
        roles = access.roles_for(key)
        if not roles:
            raise SecretNotFound(f"no secret named {key} in this vault")
        if role not in roles:
            raise Forbidden(f"the caller lacks {role} on this secret")
        return key

    async def _require_listing(self, vault: m.Vault, who: m.Principal) -> frozenset[str] | None:
        access = await self.access(vault, who)
        if access.none:
            raise Forbidden(f"the caller has no access to vault {vault.name}")
        return access.secrets_with(m.LIST)
