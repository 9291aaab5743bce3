"""The vault's management plane: vaults, their grants and key rotation (Key Vault's control plane,
the native API's `/vaults` and `keyless vault`). Every change is audited in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from keyless.domain.ports import UniqueViolation
from keyless.ids import new_guid
from keyless.vault import envelope, names
from keyless.vault import model as m
from keyless.vault.core import REWRAP_BATCH, VaultCore
from keyless.vault.errors import (
    BadParameter,
    SecretNotFound,
    VaultConflict,
)


class VaultManagement(VaultCore):
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


def _check_retention(days: int) -> None:
    if not m.MIN_RETENTION_DAYS <= days <= m.MAX_RETENTION_DAYS:
        raise BadParameter(f"retention must be {m.MIN_RETENTION_DAYS}-{m.MAX_RETENTION_DAYS} days")
