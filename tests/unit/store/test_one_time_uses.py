"""Single-use values in the shared store: a unique insert decides, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

from keyless.store import db
from keyless.store.directory import SqlDirectoryStore


async def test_first_use_wins_and_kinds_and_owners_are_separate(url: str) -> None:
    engine = db.create_engine(url)
    store = SqlDirectoryStore(engine)
    try:
        await db.migrate(engine)
        later = time.time() + 600
        assert await store.consume("client_assertion", "client-a", "jti-1", later)
        assert not await store.consume("client_assertion", "client-a", "jti-1", later)
        assert await store.consume("client_assertion", "client-b", "jti-1", later)  # B09: per owner
        assert await store.consume("join_token", "client-a", "jti-1", later)  # B09: per kind
    finally:
        store.close()
        await engine.dispose()


async def test_concurrent_consumers_exactly_one_wins(url: str) -> None:
    """B07 at the store: many simultaneous consumers of one value, one success."""
    engine = db.create_engine(url)
    store = SqlDirectoryStore(engine)
    try:
        await db.migrate(engine)
        later = time.time() + 600
        for n in range(5):
            results = await asyncio.gather(
                *[store.consume("client_assertion", "c", f"race-{n}", later) for _ in range(8)]
            )
            assert sorted(results) == [False] * 7 + [True]
    finally:
        store.close()
        await engine.dispose()
