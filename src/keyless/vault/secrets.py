"""The vault's data plane: the secrets in a vault (Key Vault's secrets API, the native API, the CLI).

Every call checks the caller's grants before it touches a secret, so the answer for a secret the
caller may not see does not depend on whether it exists (404 either way, catalog G04). Writes are
audited in their own transaction; reads go to `audit_sink` (batched off the request path) with who
read which version. Plaintext values exist only inside `set_secret`/`get_secret`/`backup`/`restore`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from keyless.domain.model import AuditEvent
from keyless.vault import backup, envelope, names
from keyless.vault import model as m
from keyless.vault.core import DEFAULT_PAGE, MAX_PAGE, VaultCore, new_version_id
from keyless.vault.errors import (
    BadParameter,
    Forbidden,
    SecretNotFound,
    TooLarge,
    VaultNotFound,
)


class SecretsPlane(VaultCore):
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
        value = self._deks.open_value(await self._key(vault, sealed.key_id), sealed.wrapped_dek, sealed.ciphertext,
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
