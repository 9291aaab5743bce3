"""Reading the sign-in and audit logs (writes happen with each change, or in batches off the token
path: `keyless.server.signin_log`)."""

from __future__ import annotations

from collections.abc import Sequence

from keyless.domain.model import AuditEvent, SignInEvent
from keyless.domain.ports import LogQuery, LogStore


class LogService:
    def __init__(self, store: LogStore) -> None:
        self._store = store

    async def signins(self, query: LogQuery) -> Sequence[SignInEvent]:
        return await self._store.query_signins(query)

    async def audit(self, query: LogQuery) -> Sequence[AuditEvent]:
        return await self._store.query_audit(query)
