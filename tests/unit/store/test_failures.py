"""The shared failure ledger (keyless.store.failures): one budget in the database, refilled by time,
never below zero, and a local bucket lowered to what is left across replicas."""

from __future__ import annotations

from keyless.clock import FrozenClock
from keyless.ratelimit import TokenBuckets
from keyless.store import db
from keyless.store.failures import SharedBuckets, SqlFailureLedger

KEY = ("203.0.113.7",)


async def test_spend_refills_by_time_and_never_goes_below_zero(url: str) -> None:
    engine = db.create_engine(url)
    clock = FrozenClock(1_800_000_000.0)
    ledger = SqlFailureLedger(engine, clock)
    try:
        await db.migrate(engine)
        spent = [await ledger.spend("src", KEY, capacity=3, rate=0.5) for _ in range(5)]
        assert spent == [2, 1, 0, 0, 0]
        clock.advance(3)  # 1.5 tokens back
        assert await ledger.spend("src", KEY, capacity=3, rate=0.5) == 0.5
        clock.advance(60)  # full again, and never more than the capacity
        assert await ledger.spend("src", KEY, capacity=3, rate=0.5) == 2
        assert await ledger.spend("other", KEY, capacity=3, rate=0.5) == 2  # budgets are per name
        clock.advance(1000)
        assert await ledger.sweep(idle_for=600) == 2
    finally:
        await engine.dispose()


async def test_two_replicas_share_one_budget(url: str) -> None:
    """Two processes' buckets over one ledger: failures on either spend the same budget."""
    engine = db.create_engine(url)
    clock = FrozenClock(1_800_000_000.0)
    ledger = SqlFailureLedger(engine, clock)
    a = SharedBuckets(TokenBuckets(clock, capacity=4, refill_per_second=0.001), ledger, "src")
    b = SharedBuckets(TokenBuckets(clock, capacity=4, refill_per_second=0.001), ledger, "src")
    try:
        await db.migrate(engine)
        for replica in (a, b, a, b):  # four failures in all, two on each replica
            assert replica.retry_after(KEY) == 0
            replica.take(KEY)
            await replica.drain()
        # Each replica alone saw two failures of four; the shared count says the budget is spent.
        assert b.retry_after(KEY) > 0
        assert a.retry_after(KEY) == 0  # a heard of b's last failure only at its own next one ...
        a.take(KEY)
        await a.drain()
        assert a.retry_after(KEY) > 0  # ... and refuses from then on
    finally:
        await engine.dispose()
