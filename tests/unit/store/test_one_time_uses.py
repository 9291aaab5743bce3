"""Single-use values in the shared store: a unique insert decides, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest

from keyless.store import db, one_time
from keyless.store.directory import SqlDirectoryStore


@asynccontextmanager
async def _store(url: str) -> AsyncIterator[SqlDirectoryStore]:
    engine = db.create_engine(url)
    store = SqlDirectoryStore(engine)
    try:
        await db.migrate(engine)
        yield store
    finally:
        store.close()
        await engine.dispose()


async def test_first_use_wins_and_kinds_and_owners_are_separate(url: str) -> None:
    async with _store(url) as store:
        later = time.time() + 600
        assert await store.consume("client_assertion", "client-a", "jti-1", later)
        assert not await store.consume("client_assertion", "client-a", "jti-1", later)
        assert await store.consume("client_assertion", "client-b", "jti-1", later)  # B09: per owner
        assert await store.consume("join_token", "client-a", "jti-1", later)  # B09: per kind


async def test_concurrent_consumers_exactly_one_wins(url: str) -> None:
    """B07 at the store: many simultaneous consumers of one value, one success."""
    async with _store(url) as store:
        later = time.time() + 600
        for n in range(5):
            results = await asyncio.gather(
                *[store.consume("client_assertion", "c", f"race-{n}", later) for _ in range(8)]
            )
            assert sorted(results) == [False] * 7 + [True]


async def test_a_used_value_in_a_batch_of_new_ones(url: str) -> None:
    """The batch's plain insert is refused as a whole when one value was used before; the new values
    of that batch are still consumed once and the used one is refused (the RETURNING fallback)."""
    async with _store(url) as store:
        later = time.time() + 600
        assert await store.consume("client_assertion", "c", "used", later)
        values = ["new-1", "used", "new-2", "new-1", "new-3"]
        results = await asyncio.gather(*[store.consume("client_assertion", "c", v, later) for v in values])
        assert results == [True, False, True, False, True]  # within a batch the first request wins
        again = await asyncio.gather(*[store.consume("client_assertion", "c", v, later) for v in values])
        assert again == [False] * 5


async def test_sqlite_waits_for_another_writer_and_then_decides(tmp_path: Path) -> None:
    """Another connection's write transaction: the batch waits (without SQLite's busy handler) and
    is decided once the lock is free, each value exactly once."""
    path = tmp_path / "s.db"
    async with _store(db.sqlite_url(path)) as store:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            later = time.time() + 600
            other.execute("BEGIN IMMEDIATE")
            pending = asyncio.gather(*[store.consume("client_assertion", "c", f"v-{n % 4}", later) for n in range(8)])
            await asyncio.sleep(0.05)
            assert not pending.done()  # the write lock is the other connection's
            other.execute("COMMIT")
            assert await asyncio.wait_for(pending, 5) == [True] * 4 + [False] * 4
        finally:
            other.close()


async def test_sqlite_purges_expired_values_every_so_often(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `SQLITE_PURGE_EVERY` values the worker deletes expired ones (`SQLITE_PURGE_LIMIT` at
    most): a value whose time is over may be used again, a live one still may not."""
    monkeypatch.setattr(one_time, "SQLITE_PURGE_EVERY", 4)
    async with _store(db.sqlite_url(tmp_path / "s.db")) as store:
        assert await store.consume("client_assertion", "c", "old", time.time() - 1)
        assert await store.consume("client_assertion", "c", "live", time.time() + 600)
        assert await asyncio.gather(*[store.consume("client_assertion", "c", f"v-{n}", time.time() + 600)
                                      for n in range(3)]) == [True] * 3  # the purge ran before this batch
        assert await store.consume("client_assertion", "c", "old", time.time() + 600)
        assert not await store.consume("client_assertion", "c", "live", time.time() + 600)


async def test_sqlite_outside_wal_mode_writes_in_the_worker(tmp_path: Path) -> None:
    """A database not in WAL mode (a commit there fsyncs): no batch is written on the loop's thread,
    and every value is still decided once."""
    path = tmp_path / "s.db"
    engine = db.create_engine(db.sqlite_url(path))
    await db.migrate(engine)
    await engine.dispose()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    writer = one_time._SqliteWriter(str(path))
    try:
        later = time.time() + 600
        assert writer.insert_now([("client_assertion", "c", "v", later)]) is None
        assert await writer.insert([("client_assertion", "c", "v", later)], None) == {("client_assertion", "c", "v")}
        assert await writer.insert([("client_assertion", "c", "v", later)], None) == set()
    finally:
        writer.close()


async def test_sqlite_purge_deletes_a_bounded_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One purge deletes at most `SQLITE_PURGE_LIMIT` expired rows (a long delete would hold a batch)."""
    monkeypatch.setattr(one_time, "SQLITE_PURGE_LIMIT", 2)
    path = tmp_path / "s.db"
    async with _store(db.sqlite_url(path)) as store:
        for n in range(5):
            assert await store.consume("client_assertion", "c", f"old-{n}", time.time() - 1)
        writer = store._one_time._sqlite
        assert writer is not None
        await writer.insert([("client_assertion", "c", "new", time.time() + 600)], time.time(), checkpoint=True)
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM one_time_uses WHERE value LIKE 'old-%'").fetchone()[0] == 3
