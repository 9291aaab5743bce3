"""Single-use values in the shared store: a unique insert decides, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
from tests.support.server import postgres_available, postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield db.sqlite_url(tmp_path / "s.db")
        return
    reason = postgres_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    with postgres_database() as pg:
        yield pg


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
