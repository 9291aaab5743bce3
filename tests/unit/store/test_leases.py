"""Leases (keyless.store.leases): one holder at a time, renewable, handed over on expiry or release."""

from __future__ import annotations

import asyncio

from keyless.clock import FrozenClock
from keyless.store import db
from keyless.store.leases import SqlLeases


async def test_one_holder_at_a_time_until_expiry_or_release(url: str) -> None:
    engine = db.create_engine(url)
    clock = FrozenClock(1_800_000_000.0)
    leases = SqlLeases(engine, clock)
    try:
        await db.migrate(engine)
        assert await leases.acquire("job", "a", 30)
        assert not await leases.acquire("job", "b", 30)
        assert await leases.acquire("other-job", "b", 30)  # leases are per name
        clock.advance(20)
        assert await leases.acquire("job", "a", 30)  # renewed: now runs to +50
        clock.advance(20)
        assert not await leases.acquire("job", "b", 30)
        clock.advance(10)
        assert await leases.acquire("job", "b", 30)  # expired: handed over
        await leases.release("job", "a")  # not the holder any more: changes nothing
        assert not await leases.acquire("job", "a", 30)
        await leases.release("job", "b")
        assert await leases.acquire("job", "a", 30)
    finally:
        await engine.dispose()


async def test_many_replicas_racing_for_a_new_lease_one_wins(url: str) -> None:
    engine = db.create_engine(url)
    leases = SqlLeases(engine, FrozenClock(1_800_000_000.0))
    try:
        await db.migrate(engine)
        for round_ in range(3):
            results = await asyncio.gather(*[leases.acquire(f"race-{round_}", f"r{n}", 30) for n in range(6)])
            assert sorted(results) == [False] * 5 + [True]
    finally:
        await engine.dispose()
