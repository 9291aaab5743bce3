"""Vault use cases: the management side (vaults, grants, key rotation) and the data side (secrets),
shared by the Key Vault-compatible API, the native API and the CLI.

Every data call checks the caller's grants before it touches a secret, so the answer for a secret the
caller may not see does not depend on whether it exists (404 either way, catalog G04). Writes are
audited in their own transaction; reads go to `audit_sink` (batched off the request path) with who
read which version. Plaintext values exist only inside `set_secret`/`get_secret`/`backup`/`restore`.

Reads are served from short-lived per-process caches (vaults, grants, keys, sealed versions — never a
plaintext value), cleared by every write through this process; another replica sees a change within
twice `cache_ttl`, the same promise the directory makes for grants and credentials.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from keyless.cache import TtlCache
from keyless.clock import Clock
from keyless.domain.model import AuditEvent
from keyless.domain.ports import UniqueViolation
from keyless.ids import new_guid
from keyless.vault import backup, envelope, names
from keyless.vault import model as m
from keyless.vault.access import Access
from keyless.vault.errors import (
    BadParameter,
    Forbidden,
    SecretNotFound,
    TooLarge,
    Unreadable,
    VaultConflict,
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


class VaultService:
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
        # Set by the server to publish this process's writes to the other replicas (keyless.store.changes).
        self.on_change: Callable[[], None] = lambda: None

    def invalidate(self) -> None:
        for cache in (self._vaults, self._access, self._keys, self._sealed):
            cache.clear()

    def _wrote(self) -> None:
        """Vaults, grants or keys changed through this process: clear here, tell the other replicas."""
        self.invalidate()
        self.on_change()

    def _changed(self) -> None:
        """A secret changed through this process: its next read must not come from the cache here, nor
        on the other replicas."""
        self._sealed.clear()
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

    async def list_vaults(self, tenant_id: str) -> Sequence[m.Vault]:
        return await self._store.list_vaults(tenant_id)

    async def check_available(self, name: str, retention_days: int = m.DEFAULT_RETENTION_DAYS) -> None:
        """Refuse a create that would fail, before the caller prepares anything for it."""
        name = names.vault_name(name)
        _check_retention(retention_days)
        if await self._store.get_vault(name) is not None:
            raise VaultConflict("a vault with that name exists")

    async def create_vault(self, tenant_id: str, name: str, *, actor: str,
                           retention_days: int = m.DEFAULT_RETENTION_DAYS, purge_protection: bool = False,
                           owner: m.Principal | None = None) -> m.Vault:
        name = names.vault_name(name)
        _check_retention(retention_days)
        now = self._clock.now()
        vault = m.Vault(id=new_guid(), tenant_id=tenant_id, name=name, retention_days=retention_days,
                        purge_protection=purge_protection, created_at=now)
        key_id = new_guid()
        key = m.VaultKey(id=key_id, vault_id=vault.id, created_at=now,
                         sealed=envelope.new_vault_key(self._kek, tenant_id, vault.id, key_id))
        grants = []
        if owner is not None:
            grants = [m.VaultGrant(id=new_guid(), vault_id=vault.id, principal_object_id=owner.object_id,
                                   principal_client_id=owner.client_id, role=role, secret_name=None, created_at=now)
                      for role in m.BUNDLES["Secrets.Officer"]]
        audit = self._audit(tenant_id, actor, "vault.create", "vault", vault.id, name=name,
                            retention_days=retention_days, purge_protection=purge_protection,
                            owner=owner.client_id if owner else None)
        try:
            await self._store.create_vault(vault, key, grants, audit)
        except UniqueViolation:
            raise VaultConflict("a vault with that name exists") from None
        self._wrote()
        return vault

    async def update_vault(self, tenant_id: str, name: str, *, actor: str, retention_days: int | None = None,
                           purge_protection: bool | None = None) -> m.Vault:
        vault = await self.vault(tenant_id, name)
        if purge_protection is False and vault.purge_protection:
            raise VaultConflict("purge protection cannot be turned off once on")
        if retention_days is not None:
            _check_retention(retention_days)
        updated = replace(vault, retention_days=vault.retention_days if retention_days is None else retention_days,
                          purge_protection=vault.purge_protection or bool(purge_protection))
        if updated != vault:
            await self._store.update_vault(updated, self._audit(
                tenant_id, actor, "vault.update", "vault", vault.id, retention_days=updated.retention_days,
                purge_protection=updated.purge_protection))
            self._wrote()
        return updated

    async def grant(self, tenant_id: str, name: str, principal: m.Principal, roles: Sequence[str], *, actor: str,
                    secret: str | None = None) -> Sequence[m.VaultGrant]:
        vault = await self.vault(tenant_id, name)
        expanded: list[str] = []
        for role in roles:
            for r in m.BUNDLES.get(role, (role,)):
                if r not in m.ROLES:
                    raise BadParameter(f"unknown vault role; use one of {', '.join(m.ROLES + tuple(m.BUNDLES))}")
                if r not in expanded:
                    expanded.append(r)
        if not expanded:
            raise BadParameter("name at least one role")
        secret_key = names.secret_key(secret) if secret is not None else None
        now = self._clock.now()
        grants = [m.VaultGrant(id=new_guid(), vault_id=vault.id, principal_object_id=principal.object_id,
                               principal_client_id=principal.client_id, role=r, secret_name=secret_key,
                               created_at=now) for r in expanded]
        result = await self._store.add_grants(grants, self._audit(
            tenant_id, actor, "vault.grant", "vault", vault.id, principal=principal.client_id, roles=expanded,
            secret=secret_key))
        self._wrote()
        return result

    async def list_grants(self, tenant_id: str, name: str) -> Sequence[m.VaultGrant]:
        vault = await self.vault(tenant_id, name)
        return await self._store.grants(vault.id)

    async def revoke(self, tenant_id: str, name: str, grant_id: str, *, actor: str) -> None:
        vault = await self.vault(tenant_id, name)
        removed = await self._store.remove_grant(vault.id, grant_id, self._audit(
            tenant_id, actor, "vault.revoke", "vault", vault.id, grant=grant_id))
        if not removed:
            raise SecretNotFound("no such grant")
        self._wrote()

    async def rotate_key(self, tenant_id: str, name: str, *, actor: str) -> dict[str, int | str]:
        """Start a new vault key and re-wrap every data key under it; values are not re-encrypted.
        Rows written meanwhile under the old key (another replica's cache) keep it alive; running
        rotation again finishes them."""
        vault = await self.vault(tenant_id, name)
        now = self._clock.now()
        key_id = new_guid()
        key = m.VaultKey(id=key_id, vault_id=vault.id, created_at=now,
                         sealed=envelope.new_vault_key(self._kek, tenant_id, vault.id, key_id))
        await self._store.add_vault_key(key, self._audit(tenant_id, actor, "vault.rotate_key", "vault", vault.id,
                                                         key=key_id))
        self._keys.clear()
        keys = await self._load_keys(vault)
        new = keys.keys[key_id]
        rewrapped = 0
        while True:
            batch = await self._store.wrapped_keys(vault.id, not_key=key_id, limit=REWRAP_BATCH)
            if not batch:
                break
            updates = [
                (w, key_id, envelope.rewrap(keys.keys[w.key_id], new, w.wrapped_dek, tenant_id=tenant_id,
                                            vault_id=vault.id, name_key=w.name_key, version=w.version))
                for w in batch
            ]
            done = await self._store.rewrap(vault.id, updates)
            rewrapped += done
            if done == 0:
                break  # every row in the batch changed under us; a later rotation finishes them
        dropped = await self._store.drop_unused_keys(vault.id, keep=key_id)
        self._keys.clear()
        self._changed()  # cached rows hold data keys wrapped by the retired key
        return {"key_id": key_id, "rewrapped": rewrapped, "retired_keys": dropped}

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

    # -- secrets -----------------------------------------------------------------------------------
    def _read_audit(self, vault: m.Vault, who: m.Principal, action: str, target: str, **details: object) -> None:
        self._sink(self._audit(vault.tenant_id, who.client_id, action, "secret", target, vault=vault.name,
                               principal=who.object_id, **details))

    async def set_secret(self, vault: m.Vault, who: m.Principal, name: str, value: str,
                         attributes: m.SecretAttributes, *, if_match: str | None = None) -> m.SecretVersion:
        key = await self._require(vault, who, name, m.SET)
        plaintext = value.encode()
        if len(plaintext) > m.MAX_VALUE_BYTES:
            raise TooLarge(f"secret values are at most {m.MAX_VALUE_BYTES} bytes")
        _check_attributes(attributes)
        now = self._clock.now()
        version = m.SecretVersion(name=name, version=new_version_id(), attributes=attributes, created_at=now,
                                  updated_at=now)
        keys = await self._load_keys(vault)
        wrapped, ciphertext = envelope.seal_value(keys.keys[keys.active], plaintext, tenant_id=vault.tenant_id,
                                                  vault_id=vault.id, name_key=key, version=version.version)
        sealed = m.SealedVersion(version=version, key_id=keys.active, wrapped_dek=wrapped, ciphertext=ciphertext)
        await self._store.add_version(vault.id, name, sealed, if_match=if_match, audit=self._audit(
            vault.tenant_id, who.client_id, "vault.secret.set", "secret", key, vault=vault.name,
            version=version.version, principal=who.object_id))
        self._changed()
        return version

    async def get_secret(self, vault: m.Vault, who: m.Principal, name: str, version: str | None) -> m.SecretValue:
        key = await self._require(vault, who, name, m.GET)
        wanted = _version(version)
        sealed = await self._sealed.get((vault.id, key, wanted),
                                        lambda: self._store.get_version(vault.id, key, wanted))
        if sealed is None:
            raise SecretNotFound(f"no secret named {key} in this vault" if version is None
                                 else "no such version of this secret")
        if not sealed.version.attributes.enabled:
            raise Forbidden("this version of the secret is disabled")
        value = envelope.open_value(await self._key(vault, sealed.key_id), sealed.wrapped_dek, sealed.ciphertext,
                                    tenant_id=vault.tenant_id, vault_id=vault.id, name_key=key,
                                    version=sealed.version.version)
        self._read_audit(vault, who, "vault.secret.get", key, version=sealed.version.version)
        return m.SecretValue(version=sealed.version, value=value.decode())

    async def update_secret(self, vault: m.Vault, who: m.Principal, name: str, version: str | None,
                            changes: Mapping[str, Any], *, if_match: str | None = None) -> m.SecretVersion:
        key = await self._require(vault, who, name, m.SET)
        current = await self._store.get_version(vault.id, key, _version(version))
        if current is None:
            raise SecretNotFound("no such version of this secret")
        attributes = replace(current.version.attributes, **changes)
        _check_attributes(attributes)
        updated = await self._store.update_version(
            vault.id, key, current.version.version, attributes, updated_at=self._clock.now(), if_match=if_match,
            audit=self._audit(vault.tenant_id, who.client_id, "vault.secret.update", "secret", key, vault=vault.name,
                              version=current.version.version, principal=who.object_id,
                              fields=sorted(changes)))
        self._changed()
        if updated is None:
            raise SecretNotFound("no such version of this secret")
        return updated

    async def list_secrets(self, vault: m.Vault, who: m.Principal, *, token: str | None,
                           limit: int | None) -> tuple[Sequence[m.SecretVersion], str | None]:
        only = await self._require_listing(vault, who)
        n = _limit(limit)
        after = _name_token(token)
        rows = await self._store.list_secrets(vault.id, after=after, limit=n + 1, only=only)
        self._read_audit(vault, who, "vault.secret.list", "*")
        page = rows[:n]
        return page, (page[-1].name.lower() if len(rows) > n else None)

    async def list_versions(self, vault: m.Vault, who: m.Principal, name: str, *, token: str | None,
                            limit: int | None) -> tuple[Sequence[m.SecretVersion], str | None]:
        key = await self._require(vault, who, name, m.LIST)
        n = _limit(limit)
        after = _seq_token(token)
        rows = await self._store.list_versions(vault.id, key, after=after, limit=n + 1)
        if rows is None:
            raise SecretNotFound(f"no secret named {key} in this vault")
        self._read_audit(vault, who, "vault.secret.versions", key)
        page = rows[:n]
        return [v for _, v in page], (str(page[-1][0]) if len(rows) > n else None)

    async def delete_secret(self, vault: m.Vault, who: m.Principal, name: str) -> m.DeletedSecret:
        key = await self._require(vault, who, name, m.DELETE)
        now = self._clock.now()
        deleted = await self._store.delete_secret(
            vault.id, key, at=now, purge_at=now + vault.retention_days * 86400,
            audit=self._audit(vault.tenant_id, who.client_id, "vault.secret.delete", "secret", key, vault=vault.name,
                              principal=who.object_id))
        self._changed()
        if deleted is None:
            raise SecretNotFound(f"no secret named {key} in this vault")
        return deleted

    async def get_deleted(self, vault: m.Vault, who: m.Principal, name: str) -> m.DeletedSecret:
        key = await self._require(vault, who, name, m.LIST)
        deleted = await self._store.get_deleted(vault.id, key, self._clock.now())
        if deleted is None:
            raise SecretNotFound(f"no deleted secret named {key} in this vault")
        return deleted

    async def list_deleted(self, vault: m.Vault, who: m.Principal, *, token: str | None,
                           limit: int | None) -> tuple[Sequence[m.DeletedSecret], str | None]:
        only = await self._require_listing(vault, who)
        n = _limit(limit)
        rows = await self._store.list_deleted(vault.id, after=_name_token(token), limit=n + 1, only=only,
                                              now=self._clock.now())
        page = rows[:n]
        return page, (page[-1].latest.name.lower() if len(rows) > n else None)

    async def recover(self, vault: m.Vault, who: m.Principal, name: str) -> m.SecretVersion:
        key = await self._require(vault, who, name, m.RECOVER)
        now = self._clock.now()
        recovered = await self._store.recover(vault.id, key, now, self._audit(
            vault.tenant_id, who.client_id, "vault.secret.recover", "secret", key, vault=vault.name,
            principal=who.object_id))
        self._changed()
        if recovered is None:
            raise SecretNotFound(f"no deleted secret named {key} in this vault")
        return recovered

    async def purge(self, vault: m.Vault, who: m.Principal, name: str) -> None:
        key = await self._require(vault, who, name, m.PURGE)
        if vault.purge_protection:
            raise Forbidden("purge protection is on: deleted secrets stay until their retention ends")
        purged = await self._store.purge(vault.id, key, self._clock.now(), self._audit(
            vault.tenant_id, who.client_id, "vault.secret.purge", "secret", key, vault=vault.name,
            principal=who.object_id))
        self._changed()
        if not purged:
            raise SecretNotFound(f"no deleted secret named {key} in this vault")

    async def backup(self, vault: m.Vault, who: m.Principal, name: str) -> str:
        key = await self._require(vault, who, name, m.BACKUP)
        versions = await self._store.all_versions(vault.id, key)
        if not versions:
            raise SecretNotFound(f"no secret named {key} in this vault")
        entries = [backup.entry(s, envelope.open_value(await self._key(vault, s.key_id), s.wrapped_dek,
                                                       s.ciphertext, tenant_id=vault.tenant_id, vault_id=vault.id,
                                                       name_key=key, version=s.version.version))
                   for s in versions]
        self._read_audit(vault, who, "vault.secret.backup", key, versions=len(entries))
        return envelope.seal_backup(self._kek, vault.tenant_id, backup.pack(vault, versions[0].version.name, entries))

    async def restore(self, vault: m.Vault, who: m.Principal, blob: str) -> m.SecretVersion:
        """Into the vault the backup came from with Restore there; into another one only while the caller
        also holds Backup and Get on the secret in its origin vault (`keyless.vault.backup`)."""
        if len(blob) > 4 * 1024 * 1024:
            raise TooLarge("the backup blob is too large")
        contents = backup.unpack(envelope.open_backup(self._kek, vault.tenant_id, blob))
        name = contents.name
        key = await self._require(vault, who, name, m.RESTORE)
        if contents.origin_id != vault.id:
            origin = None
            with contextlib.suppress(VaultNotFound):  # a vault deleted since: nobody holds Backup there
                origin = await self.find(contents.origin_name)
            if (origin is None or origin.id != contents.origin_id
                    or not (await self.access(origin, who)).roles_for(key) >= backup.ORIGIN_ROLES):
                raise backup.ForeignBackup(backup.FOREIGN)
        keys = await self._load_keys(vault)
        sealed = []
        for e in contents.entries:
            attributes = m.SecretAttributes(enabled=bool(e["enabled"]), not_before=e["nbf"], expires=e["exp"],
                                            content_type=e["contentType"], tags=e["tags"])
            version = m.SecretVersion(name=name, version=_restored_version(e["version"]), attributes=attributes,
                                      created_at=float(e["created"]), updated_at=float(e["updated"]))
            wrapped, ciphertext = envelope.seal_value(keys.keys[keys.active], str(e["value"]).encode(),
                                                      tenant_id=vault.tenant_id, vault_id=vault.id, name_key=key,
                                                      version=version.version)
            sealed.append(m.SealedVersion(version=version, key_id=keys.active, wrapped_dek=wrapped,
                                          ciphertext=ciphertext))
        await self._store.restore(vault.id, name, sealed, self._audit(
            vault.tenant_id, who.client_id, "vault.secret.restore", "secret", key, vault=vault.name,
            versions=len(sealed), principal=who.object_id, origin=contents.origin_name))
        self._changed()
        return sealed[-1].version

    def denied(self, vault: m.Vault, who: m.Principal, operation: str, code: str) -> AuditEvent:
        """The audit record of a refused data call (403/404), written through the batched log."""
        return self._audit(vault.tenant_id, who.client_id, "vault.denied", "vault", vault.name,
                           principal=who.object_id, operation=operation, code=code)

    async def purge_expired(self) -> int:
        purged = await self._store.purge_expired(self._clock.now())
        if purged:
            self._changed()
        return purged


def _check_retention(days: int) -> None:
    if not m.MIN_RETENTION_DAYS <= days <= m.MAX_RETENTION_DAYS:
        raise BadParameter(f"retention must be {m.MIN_RETENTION_DAYS}-{m.MAX_RETENTION_DAYS} days")


def _check_attributes(a: m.SecretAttributes) -> None:
    names.tags(a.tags)
    names.content_type(a.content_type)
    for t in (a.not_before, a.expires):
        if t is not None and not (0 <= t < 253402300800):  # before year 10000
            raise BadParameter("nbf and exp are Unix times in seconds")
    if a.not_before is not None and a.expires is not None and a.expires <= a.not_before:
        raise BadParameter("exp must be after nbf")


def _version(version: str | None) -> str | None:
    if version in (None, ""):
        return None
    assert version is not None
    if len(version) != 32 or not all(c in "0123456789abcdef" for c in version):
        raise SecretNotFound("no such version of this secret")
    return version


def _restored_version(version: object) -> str:
    if not isinstance(version, str) or _version(version) is None:
        raise ValueError("bad version id")
    return version


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise BadParameter(f"maxresults must be 1-{MAX_PAGE}")
    return limit


def _name_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return names.secret_key(token)
    except BadParameter:
        raise BadParameter("the page token is not valid") from None


def _seq_token(token: str | None) -> int | None:
    if not token:
        return None
    if not token.isdigit() or len(token) > 12:
        raise BadParameter("the page token is not valid")
    return int(token)
