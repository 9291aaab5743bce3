"""`VaultStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike.

A new version's sequence number is `max + 1` under a UNIQUE (secret, seq) constraint: two writers that
race get one winner and one retry, which is also what makes `If-Match` a real compare-and-set.
Every write commits with its audit row; an acknowledged write is a committed transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyless.domain.model import AuditEvent
from keyless.domain.ports import UniqueViolation
from keyless.ids import new_guid
from keyless.store import tables as t
from keyless.store import vault_tables as vt
from keyless.store.logrows import audit_row as _audit_row
from keyless.store.logrows import insert_rows
from keyless.store.vault_rows import attribute_values as _attribute_values
from keyless.store.vault_rows import grant_of as _grant
from keyless.store.vault_rows import sealed_of as _sealed
from keyless.store.vault_rows import vault_of as _vault
from keyless.store.vault_rows import version_of as _version
from keyless.store.vault_rows import version_values as _version_values
from keyless.vault.errors import PreconditionFailed, VaultConflict
from keyless.vault.model import (
    DeletedSecret,
    SealedVersion,
    SecretAttributes,
    SecretVersion,
    Vault,
    VaultGrant,
    VaultKey,
)
from keyless.vault.ports import WrappedKey

T = TypeVar("T")
RACE_RETRIES = 8
s_, v_ = vt.vault_secrets, vt.vault_versions


_VERSION_COLUMNS = (s_.c.name, v_.c.version, v_.c.seq, v_.c.enabled, v_.c.not_before, v_.c.expires,
                    v_.c.content_type, v_.c.tags, v_.c.created_at, v_.c.updated_at)
_SEALED_COLUMNS = (*_VERSION_COLUMNS, v_.c.key_id, v_.c.wrapped_dek, v_.c.ciphertext)
_latest_seq = select(func.max(v_.c.seq)).where(v_.c.secret_id == s_.c.id).correlate(s_).scalar_subquery()


class SqlVaultStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _raced(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run a write transaction, again if it lost a uniqueness race to a concurrent writer."""
        for _ in range(RACE_RETRIES - 1):
            try:
                return await attempt()
            except IntegrityError:
                continue
        return await attempt()

    @staticmethod
    async def _audit(conn: AsyncConnection, event: AuditEvent) -> None:
        await conn.execute(insert(t.audit_log).values(**_audit_row(event)))

    # -- vaults, keys, grants ----------------------------------------------------------------------
    async def get_vault(self, name: str) -> Vault | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(vt.vaults).where(vt.vaults.c.name == name))).first()
        return _vault(row) if row else None

    async def list_vaults(self, tenant_id: str) -> Sequence[Vault]:
        query = select(vt.vaults).where(vt.vaults.c.tenant_id == tenant_id).order_by(vt.vaults.c.name)
        async with self.engine.connect() as conn:
            return [_vault(r) for r in (await conn.execute(query)).all()]

    async def create_vault(self, vault: Vault, key: VaultKey, grants: Sequence[VaultGrant],
                           audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(vt.vaults).values(
                    id=vault.id, tenant_id=vault.tenant_id, name=vault.name, retention_days=vault.retention_days,
                    purge_protection=vault.purge_protection, created_at=vault.created_at))
                await conn.execute(insert(vt.vault_keys).values(id=key.id, vault_id=key.vault_id, sealed=key.sealed,
                                                                created_at=key.created_at))
                for g in grants:
                    await conn.execute(insert(vt.vault_grants).values(**self._grant_values(g)))
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("vault name taken") from None

    async def update_vault(self, vault: Vault, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(vt.vaults).where(vt.vaults.c.id == vault.id).values(
                retention_days=vault.retention_days, purge_protection=vault.purge_protection))
            await self._audit(conn, audit)

    async def vault_keys(self, vault_id: str) -> Sequence[VaultKey]:
        query = select(vt.vault_keys).where(vt.vault_keys.c.vault_id == vault_id).order_by(
            vt.vault_keys.c.created_at, vt.vault_keys.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [VaultKey(id=r.id, vault_id=r.vault_id, sealed=bytes(r.sealed), created_at=r.created_at) for r in rows]

    async def add_vault_key(self, key: VaultKey, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(vt.vault_keys).values(id=key.id, vault_id=key.vault_id, sealed=key.sealed,
                                                            created_at=key.created_at))
            await self._audit(conn, audit)

    @staticmethod
    def _grant_values(g: VaultGrant) -> dict[str, Any]:
        return {"id": g.id, "vault_id": g.vault_id, "principal_object_id": g.principal_object_id,
                "principal_client_id": g.principal_client_id, "role": g.role, "secret_name": g.secret_name or "",
                "created_at": g.created_at}

    async def grants(self, vault_id: str, principal_object_id: str | None = None) -> Sequence[VaultGrant]:
        g = vt.vault_grants
        query = select(g).where(g.c.vault_id == vault_id)
        if principal_object_id is not None:
            query = query.where(g.c.principal_object_id == principal_object_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(g.c.created_at, g.c.role))).all()
        return [_grant(r) for r in rows]

    async def add_grants(self, grants: Sequence[VaultGrant], audit: AuditEvent) -> Sequence[VaultGrant]:
        g = vt.vault_grants

        async def attempt() -> Sequence[VaultGrant]:
            out = []
            async with self.engine.begin() as conn:
                for grant in grants:
                    same = and_(g.c.vault_id == grant.vault_id, g.c.principal_object_id == grant.principal_object_id,
                                g.c.secret_name == (grant.secret_name or ""), g.c.role == grant.role)
                    row = (await conn.execute(select(g).where(same))).first()
                    if row is None:
                        await conn.execute(insert(g).values(**self._grant_values(grant)))
                        out.append(grant)
                    else:
                        out.append(_grant(row))
                await self._audit(conn, audit)
            return out

        return await self._raced(attempt)

    async def remove_grant(self, vault_id: str, grant_id: str, audit: AuditEvent) -> bool:
        g = vt.vault_grants
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(g).where(g.c.vault_id == vault_id, g.c.id == grant_id))
            if result.rowcount == 0:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    # -- versions ----------------------------------------------------------------------------------
    async def add_version(self, vault_id: str, name: str, sealed: SealedVersion, *, if_match: str | None,
                          audit: AuditEvent) -> None:
        name_key = name.lower()

        async def attempt() -> None:
            async with self.engine.begin() as conn:
                secret = await self._lock_secret(conn, vault_id, name_key)
                if secret is None:
                    if if_match not in (None, "*"):
                        raise PreconditionFailed("the secret has no version to match")
                    secret_id, seq = new_guid(), 1
                    await conn.execute(insert(s_).values(id=secret_id, vault_id=vault_id, name=name, name_key=name_key,
                                                         created_at=sealed.version.created_at))
                else:
                    if secret.deleted_at is not None:
                        raise VaultConflict(
                            "a secret of that name is deleted but recoverable: recover or purge it first")
                    secret_id = secret.id
                    latest = (await conn.execute(select(v_.c.version, v_.c.seq).where(v_.c.secret_id == secret_id)
                                                 .order_by(v_.c.seq.desc()).limit(1))).first()
                    if if_match not in (None, "*") and (latest is None or latest.version != if_match):
                        raise PreconditionFailed("the latest version is not the one named in If-Match")
                    seq = (latest.seq if latest else 0) + 1
                await conn.execute(insert(v_).values(**_version_values(secret_id, seq, sealed)))
                await self._audit(conn, audit)

        await self._raced(attempt)

    @staticmethod
    async def _lock_secret(conn: AsyncConnection, vault_id: str, name_key: str) -> Any:
        """The secret's row, locked for this transaction: writers of one secret queue here instead of
        racing for the next sequence number (a no-op UPDATE takes PostgreSQL's row lock and SQLite's
        write lock alike, where SELECT … FOR UPDATE would not exist on SQLite)."""
        return (await conn.execute(
            update(s_).where(s_.c.vault_id == vault_id, s_.c.name_key == name_key)
            .values(name_key=s_.c.name_key).returning(s_.c.id, s_.c.deleted_at))).first()

    async def get_version(self, vault_id: str, name_key: str, version: str | None) -> SealedVersion | None:
        query = (select(*_SEALED_COLUMNS).join_from(v_, s_, s_.c.id == v_.c.secret_id)
                 .where(s_.c.vault_id == vault_id, s_.c.name_key == name_key, s_.c.deleted_at.is_(None)))
        query = query.where(v_.c.version == version) if version else query.order_by(v_.c.seq.desc()).limit(1)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _sealed(row) if row else None

    async def update_version(self, vault_id: str, name_key: str, version: str | None, attributes: SecretAttributes,
                             *, updated_at: float, if_match: str | None, audit: AuditEvent) -> SecretVersion | None:
        async with self.engine.begin() as conn:
            secret = await self._lock_secret(conn, vault_id, name_key)
            if secret is None or secret.deleted_at is not None:
                await conn.rollback()
                return None
            secret_id = secret.id
            if if_match not in (None, "*"):
                latest = (await conn.execute(select(v_.c.version).where(v_.c.secret_id == secret_id)
                                             .order_by(v_.c.seq.desc()).limit(1))).scalar()
                if latest != if_match:
                    raise PreconditionFailed("the latest version is not the one named in If-Match")
            result = await conn.execute(update(v_).where(v_.c.secret_id == secret_id, v_.c.version == version)
                                        .values(updated_at=updated_at, **_attribute_values(attributes)))
            if result.rowcount == 0:
                await conn.rollback()
                return None
            await self._audit(conn, audit)
            row = (await conn.execute(select(*_VERSION_COLUMNS).join_from(v_, s_, s_.c.id == v_.c.secret_id)
                                      .where(v_.c.secret_id == secret_id, v_.c.version == version))).one()
        return _version(row)

    async def list_secrets(self, vault_id: str, *, after: str | None, limit: int,
                           only: frozenset[str] | None) -> Sequence[SecretVersion]:
        query = (select(*_VERSION_COLUMNS).join_from(s_, v_, v_.c.secret_id == s_.c.id)
                 .where(s_.c.vault_id == vault_id, s_.c.deleted_at.is_(None), v_.c.seq == _latest_seq))
        if after is not None:
            query = query.where(s_.c.name_key > after)
        if only is not None:
            if not only:
                return []
            query = query.where(s_.c.name_key.in_(sorted(only)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(s_.c.name_key).limit(limit))).all()
        return [_version(r) for r in rows]

    async def list_versions(self, vault_id: str, name_key: str, *, after: int | None,
                            limit: int) -> Sequence[tuple[int, SecretVersion]] | None:
        async with self.engine.connect() as conn:
            secret_id = (await conn.execute(select(s_.c.id).where(
                s_.c.vault_id == vault_id, s_.c.name_key == name_key, s_.c.deleted_at.is_(None)))).scalar()
            if secret_id is None:
                return None
            query = (select(*_VERSION_COLUMNS).join_from(v_, s_, s_.c.id == v_.c.secret_id)
                     .where(v_.c.secret_id == secret_id))
            if after is not None:
                query = query.where(v_.c.seq > after)
            rows = (await conn.execute(query.order_by(v_.c.seq).limit(limit))).all()
        return [(r.seq, _version(r)) for r in rows]

    async def _latest(self, conn: AsyncConnection, secret_id: str) -> SecretVersion:
        row = (await conn.execute(select(*_VERSION_COLUMNS).join_from(v_, s_, s_.c.id == v_.c.secret_id)
                                  .where(v_.c.secret_id == secret_id).order_by(v_.c.seq.desc()).limit(1))).one()
        return _version(row)

    async def delete_secret(self, vault_id: str, name_key: str, *, at: float, purge_at: float,
                            audit: AuditEvent) -> DeletedSecret | None:
        async with self.engine.begin() as conn:
            secret_id = (await conn.execute(select(s_.c.id).where(
                s_.c.vault_id == vault_id, s_.c.name_key == name_key, s_.c.deleted_at.is_(None)))).scalar()
            if secret_id is None:
                return None
            await conn.execute(update(s_).where(s_.c.id == secret_id).values(deleted_at=at, purge_at=purge_at))
            await self._audit(conn, audit)
            latest = await self._latest(conn, secret_id)
        return DeletedSecret(latest=latest, deleted_at=at, scheduled_purge_at=purge_at)

    def _deleted_query(self, vault_id: str, now: float) -> Any:
        return (select(*_VERSION_COLUMNS, s_.c.deleted_at, s_.c.purge_at).join_from(s_, v_, v_.c.secret_id == s_.c.id)
                .where(s_.c.vault_id == vault_id, s_.c.deleted_at.is_not(None), s_.c.purge_at > now,
                       v_.c.seq == _latest_seq))

    async def get_deleted(self, vault_id: str, name_key: str, now: float) -> DeletedSecret | None:
        query = self._deleted_query(vault_id, now).where(s_.c.name_key == name_key)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return DeletedSecret(latest=_version(row), deleted_at=row.deleted_at, scheduled_purge_at=row.purge_at) \
            if row else None

    async def list_deleted(self, vault_id: str, *, after: str | None, limit: int, only: frozenset[str] | None,
                           now: float) -> Sequence[DeletedSecret]:
        query = self._deleted_query(vault_id, now)
        if after is not None:
            query = query.where(s_.c.name_key > after)
        if only is not None:
            if not only:
                return []
            query = query.where(s_.c.name_key.in_(sorted(only)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(s_.c.name_key).limit(limit))).all()
        return [DeletedSecret(latest=_version(r), deleted_at=r.deleted_at, scheduled_purge_at=r.purge_at)
                for r in rows]

    async def recover(self, vault_id: str, name_key: str, now: float, audit: AuditEvent) -> SecretVersion | None:
        async with self.engine.begin() as conn:
            secret_id = (await conn.execute(select(s_.c.id).where(
                s_.c.vault_id == vault_id, s_.c.name_key == name_key, s_.c.deleted_at.is_not(None),
                s_.c.purge_at > now))).scalar()
            if secret_id is None:
                return None
            await conn.execute(update(s_).where(s_.c.id == secret_id).values(deleted_at=None, purge_at=None))
            await self._audit(conn, audit)
            return await self._latest(conn, secret_id)

    async def purge(self, vault_id: str, name_key: str, now: float, audit: AuditEvent) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(s_).where(
                s_.c.vault_id == vault_id, s_.c.name_key == name_key, s_.c.deleted_at.is_not(None),
                s_.c.purge_at > now))
            if result.rowcount == 0:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    async def purge_expired(self, now: float) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(s_).where(s_.c.deleted_at.is_not(None), s_.c.purge_at <= now))
        return int(result.rowcount or 0)

    async def all_versions(self, vault_id: str, name_key: str) -> Sequence[SealedVersion]:
        query = (select(*_SEALED_COLUMNS).join_from(v_, s_, s_.c.id == v_.c.secret_id)
                 .where(s_.c.vault_id == vault_id, s_.c.name_key == name_key, s_.c.deleted_at.is_(None))
                 .order_by(v_.c.seq))
        async with self.engine.connect() as conn:
            return [_sealed(r) for r in (await conn.execute(query)).all()]

    async def restore(self, vault_id: str, name: str, versions: Sequence[SealedVersion], audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                secret_id = new_guid()
                await conn.execute(insert(s_).values(id=secret_id, vault_id=vault_id, name=name, name_key=name.lower(),
                                                     created_at=versions[0].version.created_at))
                for seq, sealed in enumerate(versions, start=1):
                    await conn.execute(insert(v_).values(**_version_values(secret_id, seq, sealed)))
                await self._audit(conn, audit)
        except IntegrityError:
            raise VaultConflict("a secret of that name exists in this vault (live or deleted)") from None

    # -- key rotation ------------------------------------------------------------------------------
    async def wrapped_keys(self, vault_id: str, *, not_key: str, limit: int) -> Sequence[WrappedKey]:
        query = (select(v_.c.secret_id, s_.c.name_key, v_.c.version, v_.c.key_id, v_.c.wrapped_dek)
                 .join_from(v_, s_, s_.c.id == v_.c.secret_id)
                 .where(s_.c.vault_id == vault_id, v_.c.key_id != not_key).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [WrappedKey(secret_id=r.secret_id, name_key=r.name_key, version=r.version, key_id=r.key_id,
                           wrapped_dek=bytes(r.wrapped_dek)) for r in rows]

    async def rewrap(self, vault_id: str, updates: Sequence[tuple[WrappedKey, str, bytes]]) -> int:
        done = 0
        async with self.engine.begin() as conn:
            for old, key_id, wrapped in updates:
                result = await conn.execute(update(v_).where(
                    v_.c.secret_id == old.secret_id, v_.c.version == old.version, v_.c.key_id == old.key_id,
                    v_.c.wrapped_dek == old.wrapped_dek).values(key_id=key_id, wrapped_dek=wrapped))
                done += int(result.rowcount or 0)
        return done

    async def drop_unused_keys(self, vault_id: str, keep: str) -> int:
        k = vt.vault_keys
        used = exists().where(v_.c.key_id == k.c.id)
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(k).where(k.c.vault_id == vault_id, k.c.id != keep, ~used))
        return int(result.rowcount or 0)

    async def record_audits(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self.engine.begin() as conn:  # a vault read's audit record: batched, through the driver
            await insert_rows(conn, t.audit_log, [_audit_row(e) for e in events])
