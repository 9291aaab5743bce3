"""Web console sessions on SQLAlchemy Core (migration 0013): one row per sign-in, shared by every
replica, so a session opened on one is accepted by the others and sign-out ends it everywhere.
Starting and ending a session are audited in the same transaction, like every other change."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from keyless.domain.console import ConsoleSession
from keyless.domain.model import AuditEvent
from keyless.store import tables as t
from keyless.store.base import SqlRepository

# Rows whose absolute limit passed this long ago are removed when a new session starts.
KEEP_ENDED = 86400.0


class SqlConsoleStore(SqlRepository):
    async def start(self, session: ConsoleSession, audit: AuditEvent) -> None:
        s = t.console_sessions
        async with self.engine.begin() as conn:
            await conn.execute(delete(s).where(s.c.expires_at < session.created_at - KEEP_ENDED))
            await conn.execute(insert(s).values(
                id=session.id, tenant_id=session.tenant_id, client_id=session.client_id,
                object_id=session.object_id, roles=",".join(sorted(session.roles)), created_at=session.created_at,
                last_seen_at=session.last_seen_at, expires_at=session.expires_at, ended_at=None,
                credential_id=session.credential_id, credential_type=session.credential_type,
            ))
            await self._audit(conn, audit)

    async def get(self, session_id: str) -> ConsoleSession | None:
        s = t.console_sessions
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(s).where(s.c.id == session_id))).first()
        if row is None:
            return None
        return ConsoleSession(
            id=row.id, tenant_id=row.tenant_id, client_id=row.client_id, object_id=row.object_id,
            roles=frozenset(r for r in row.roles.split(",") if r), created_at=row.created_at,
            last_seen_at=row.last_seen_at, expires_at=row.expires_at, ended_at=row.ended_at,
            credential_id=row.credential_id, credential_type=row.credential_type,
        )

    async def touch(self, session_id: str, now: float) -> None:
        s = t.console_sessions
        async with self.engine.begin() as conn:
            await conn.execute(update(s).where(s.c.id == session_id, s.c.last_seen_at < now).values(last_seen_at=now))

    async def end(self, session_id: str, now: float, audit: AuditEvent) -> bool:
        """End the session for every replica; False when it was already ended (nothing is audited)."""
        s = t.console_sessions
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(s).where(s.c.id == session_id, s.c.ended_at.is_(None)).values(ended_at=now)
            )
            if done.rowcount != 1:
                return False
            await self._audit(conn, audit)
        return True
