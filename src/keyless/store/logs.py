"""The sign-in and audit logs on SQLAlchemy Core (`keyless.domain.ports.LogStore`): sign-ins are
written in batches off the token path (`keyless.server.signin_log`), audit rows with each change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select

from keyless.domain.model import AuditEvent, SignInEvent
from keyless.domain.ports import LogQuery
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.logrows import insert_rows, signin_row


def _window(q: Any, col_time: Any, col_seq: Any, query: LogQuery) -> Any:
    if query.since is not None:
        q = q.where(col_time >= query.since)
    if query.until is not None:
        q = q.where(col_time < query.until)
    if query.before_seq is not None:
        q = q.where(col_seq < query.before_seq)
    return q


class SqlLogStore(SqlRepository):
    async def record_signins(self, events: Sequence[SignInEvent]) -> None:
        if not events:
            return
        async with self.engine.begin() as conn:
            await insert_rows(conn, t.signin_log, [signin_row(e) for e in events])

    async def record_audit(self, event: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await self._audit(conn, event)

    async def query_signins(self, query: LogQuery) -> Sequence[SignInEvent]:
        s = t.signin_log
        q = select(s).where(s.c.tenant_id == query.tenant_id)
        if query.client_id:
            q = q.where(s.c.client_id == query.client_id)
        if query.result:
            q = q.where(s.c.result == query.result)
        q = _window(q, s.c.time, s.c.id, query).order_by(s.c.id.desc()).limit(query.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            SignInEvent(
                time=r.time, tenant_id=r.tenant_id, client_id=r.client_id, credential_id=r.credential_id,
                credential_type=r.credential_type, resource=r.resource, result=r.result, error=r.error,
                detail=r.detail, source=r.source, token_id=r.token_id, grant_type=r.grant_type,
                auth_method=r.auth_method, seq=r.id,
            )
            for r in rows
        ]

    async def query_audit(self, query: LogQuery) -> Sequence[AuditEvent]:
        a = t.audit_log
        q = select(a).where(a.c.tenant_id == query.tenant_id)
        if query.client_id:
            q = q.where(or_(a.c.actor == query.client_id, a.c.target_id == query.client_id))
        if query.action:
            q = q.where(a.c.action == query.action)
        q = _window(q, a.c.time, a.c.id, query).order_by(a.c.id.desc()).limit(query.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            AuditEvent(
                time=r.time, tenant_id=r.tenant_id, actor=r.actor, action=r.action, target_type=r.target_type,
                target_id=r.target_id, details=json.loads(r.details), seq=r.id,
            )
            for r in rows
        ]
