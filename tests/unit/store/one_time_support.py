"""A migrated directory store on a database URL, released and closed on leaving (the single-use tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from keyless.store import db
from keyless.store.directory import SqlDirectoryStore


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[SqlDirectoryStore]:
    engine = db.create_engine(url)
    store = SqlDirectoryStore(engine)
    try:
        await db.migrate(engine)
        yield store
    finally:
        await store.release()
        await engine.dispose()
