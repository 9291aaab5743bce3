"""Leak records and the keyed-hash lookup of presented secrets (`keyless.domain.leaks.LeakStore`).

Recording a leak, revoking its secret (through `keyless.store.credentials`, the one writer of
credential rows) and writing the audit row are one transaction; the (secret,
location) unique constraint makes a repeated report a no-op on every replica, whichever wins a race.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import Row, and_, insert, select
from sqlalchemy.exc import IntegrityError

from keyless.domain.leaks import Leak, SecretMatch
from keyless.domain.model import AuditEvent
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.credentials import revoke_secret_in
from keyless.store.leak_tables import leaks as lk


def leak_of(row: Row[Any]) -> Leak:
    return Leak(
        id=row.id, tenant_id=row.tenant_id, client_id=row.client_id, secret_id=row.secret_id, hint=row.hint,
        location=row.location, source=row.source, reporter=row.reporter, reported_at=row.reported_at,
        status_before=row.status_before, revoked=bool(row.revoked),
    )


class SqlLeakStore(SqlRepository):
    async def find_secret(self, digest: bytes, tenant_id: str | None) -> SecretMatch | None:
        cs, apps = t.client_secrets, t.applications
        q = (select(cs.c.id, cs.c.client_id, cs.c.hint, cs.c.expires_at, cs.c.revoked_at, apps.c.tenant_id,
                    apps.c.display_name)
             .join(apps, apps.c.client_id == cs.c.client_id).where(cs.c.digest == digest))
        if tenant_id is not None:
            q = q.where(apps.c.tenant_id == tenant_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.limit(1))).first()
        if row is None:
            return None
        return SecretMatch(tenant_id=row.tenant_id, client_id=row.client_id, secret_id=row.id, hint=row.hint,
                           display_name=row.display_name, expires_at=row.expires_at, revoked_at=row.revoked_at)

    async def _existing(self, secret_id: str, location: str) -> Leak | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(lk).where(and_(lk.c.secret_id == secret_id, lk.c.location == location))
            )).first()
        return leak_of(row) if row is not None else None

    async def record_leak(self, leak: Leak, audit: AuditEvent) -> tuple[Leak, bool]:
        existing = await self._existing(leak.secret_id, leak.location)
        if existing is not None:
            return existing, False
        try:
            async with self.engine.begin() as conn:
                # another report may have revoked it a moment ago
                revoked = leak.revoked and await revoke_secret_in(conn, leak.secret_id, leak.reported_at)
                stored = replace(leak, revoked=revoked)
                await conn.execute(insert(lk).values(**asdict(stored)))
                await self._audit(conn, _with_revoked(audit, revoked))
        except IntegrityError:  # the same report, recorded by another request or replica just now
            existing = await self._existing(leak.secret_id, leak.location)
            if existing is None:
                raise
            return existing, False
        return stored, True

    async def leaks(self, tenant_id: str, client_id: str | None = None) -> Sequence[Leak]:
        q = select(lk).where(lk.c.tenant_id == tenant_id)
        if client_id is not None:
            q = q.where(lk.c.client_id == client_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(lk.c.reported_at.desc(), lk.c.id).limit(1000))).all()
        return [leak_of(r) for r in rows]


def _with_revoked(audit: AuditEvent, revoked: bool) -> AuditEvent:
    return audit if audit.details.get("revoked") == revoked else replace(audit, details={**audit.details,
                                                                                         "revoked": revoked})
