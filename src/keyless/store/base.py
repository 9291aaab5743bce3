"""What every SQL repository shares: the engine, and writing an audit row in the caller's transaction.

Each aggregate has its own repository module (`tenants`, `applications`, `credentials`,
`assignments`, `signing_keys`, `logs`, `hosts`, `federation`, `vault`) over this base, so a change to
one concept touches one file. Every write is one transaction together with its
audit row: a failed request changes nothing and no change goes unaudited.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table, insert, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyless.domain.model import AuditEvent
from keyless.store import tables as t
from keyless.store.logrows import audit_row


async def insert_audit(conn: AsyncConnection, event: AuditEvent) -> None:
    """Record `event` inside the transaction of the change it describes (through the sanitising
    row builder, `keyless.store.logrows`)."""
    await conn.execute(insert(t.audit_log).values(**audit_row(event)))


class SqlRepository:
    """Base of the SQL repositories: one engine, shared by every aggregate's repository."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _audit(self, conn: AsyncConnection, event: AuditEvent) -> None:
        await insert_audit(conn, event)

    async def _mark_used(self, table: Table, last_used: Mapping[str, float]) -> None:
        """Move `last_used_at` forward only (batches may arrive out of order)."""
        if not last_used:
            return
        async with self.engine.begin() as conn:
            for row_id, when in last_used.items():
                await conn.execute(
                    update(table)
                    .where(table.c.id == row_id, or_(table.c.last_used_at.is_(None), table.c.last_used_at < when))
                    .values(last_used_at=when)
                )
