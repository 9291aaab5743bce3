"""Leases: background work that exactly one replica at a time may do (docs/deployment.md).

A lease is a row `(name, holder, expires_at)`. A replica holds it while the row names it and has not
expired; it renews by taking it again before then. Taking is one conditional `UPDATE` (or the first
`INSERT`, arbitrated by the primary key), so two replicas can never both hold a lease, on SQLite or
PostgreSQL alike, and a replica that dies loses its lease when it expires. Time comes from the
injected clock; replicas' clocks must agree to well within a lease's length (NTP does).
"""

from __future__ import annotations

from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.clock import Clock
from keyless.store.tables import leases


class SqlLeases:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def acquire(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew `name` for `seconds`; False while another holder's lease runs."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            taken = await conn.execute(
                update(leases)
                .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at <= now))
                .values(holder=holder, expires_at=now + seconds)
            )
            if taken.rowcount == 1:
                return True
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(leases).values(name=name, holder=holder, expires_at=now + seconds))
            return True
        except IntegrityError:
            return False

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up early (a clean stop), so another replica need not wait for it to expire."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(leases).where(leases.c.name == name, leases.c.holder == holder).values(expires_at=0.0)
            )
