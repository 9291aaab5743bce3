"""Failed-authentication budgets shared by every replica (docs/security.md, "Failure throttling").

Each replica keeps its buckets in memory (`keyless.ratelimit.TokenBuckets`), so the check before
verification costs no database round trip. Every *failure* is also spent in a row of
`failure_buckets` on the shared database, in one upsert that refills the row for the time elapsed
and takes one token, returning what is left across all replicas; the replica then lowers its own
bucket to that. An attacker spreading guesses over N replicas therefore gets the one budget, plus at
most one guess per other replica before each of them has heard the shared count; requests that do not
fail touch the database not at all. A row whose bucket has refilled is deleted by the sweep.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import case, delete, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.clock import Clock
from keyless.oauth.ratelimit import Budget, FailureThrottle
from keyless.ratelimit import Key, TokenBuckets
from keyless.store.tables import failure_buckets

log = logging.getLogger("keyless.failures")
SEPARATOR = "\x1f"  # never in an address, a GUID or a (capped, printable) client id


class SqlFailureLedger:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._insert: Any = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def spend(self, name: str, key: Key, *, capacity: float, rate: float) -> float:
        """Refill `name`/`key`'s shared bucket for the time since its last use, take one token, and
        return the tokens left (never below zero)."""
        now = self._clock.now()
        row = failure_buckets.c
        elapsed = case((literal(now) > row.updated_at, literal(now) - row.updated_at), else_=0.0)
        refilled = row.tokens + elapsed * rate
        capped = case((refilled > capacity, literal(capacity)), else_=refilled)
        left = case((capped - 1 < 0, literal(0.0)), else_=capped - 1)
        stmt = (
            self._insert(failure_buckets)
            .values(key=SEPARATOR.join((name, *key))[:320], tokens=max(0.0, capacity - 1), updated_at=now)
            .on_conflict_do_update(index_elements=[row.key], set_={"tokens": left, "updated_at": now})
            .returning(row.tokens)
        )
        async with self._engine.begin() as conn:
            tokens: float = (await conn.execute(stmt)).scalar_one()
        return tokens

    async def sweep(self, *, idle_for: float) -> int:
        """Delete buckets unused for `idle_for` seconds (full again by then, so nothing is forgotten)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(failure_buckets).where(failure_buckets.c.updated_at < self._clock.now() - idle_for)
            )
        return int(result.rowcount or 0)


class SharedBuckets:
    """`keyless.ratelimit.Buckets` over a local `TokenBuckets` kept in step with the shared ledger."""

    def __init__(self, local: TokenBuckets, ledger: SqlFailureLedger, name: str) -> None:
        self._local = local
        self._ledger = ledger
        self._name = name
        self.capacity = local.capacity
        self.rate = local.rate
        self._pending: set[asyncio.Task[None]] = set()

    def retry_after(self, key: Key) -> int:
        return self._local.retry_after(key)

    def full_after(self, key: Key) -> int:
        return self._local.full_after(key)

    def take(self, key: Key) -> None:
        self._local.take(key)
        task = asyncio.get_running_loop().create_task(self._share(key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _share(self, key: Key) -> None:
        try:
            left = await self._ledger.spend(self._name, key, capacity=self.capacity, rate=self.rate)
        except Exception as exc:  # the local budget still holds; the others hear at their next failure
            log.warning("shared failure budget unavailable", extra={"event": "failure_ledger_failed",
                                                                      "error": type(exc).__name__})
            return
        self._local.cap(key, left)

    async def drain(self) -> None:
        """Wait for spends in flight (tests, and an orderly stop)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def shared_throttle(engine: AsyncEngine, clock: Clock, *, source: Budget, source_client: Budget,
                    client: Budget) -> FailureThrottle:
    """The token endpoint's failure throttle with every budget shared through `engine`'s database."""
    ledger = SqlFailureLedger(engine, clock)

    def shared(name: str, budget: Budget) -> SharedBuckets:
        local = TokenBuckets(clock, capacity=budget.burst, refill_per_second=budget.per_second)
        return SharedBuckets(local, ledger, name)

    return FailureThrottle(by_source=shared("src", source), by_source_client=shared("src-client", source_client),
                           by_client=shared("client", client))
