"""Single use on SQLite: decided in the server's memory over an append-only log (issue 18,
`keyless.store.one_time_memory`). What was taken survives a restart; a full index hands over to the
unique table, and a value taken either way is refused by the other; a failed append frees its value."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from keyless.store import db, one_time, one_time_sqlite
from keyless.store.one_time_memory import SeenIndex, digest
from tests.unit.store.one_time_support import migrated_store

KIND = "client_assertion"


_COUNT = {table: f"SELECT count(*) FROM {table}" for table in ("one_time_log", "one_time_uses")}  # noqa: S608


def _count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(_COUNT[table]).fetchone()[0])


def test_the_digest_keeps_kind_owner_and_value_apart() -> None:
    """Length prefixes: no two (kind, owner, value) triples hash the same input (B09's namespaces)."""
    keys = {digest("a", "b", "c"), digest("ab", "", "c"), digest("a", "bc", ""), digest("a", "b", "c\x00"),
            digest("a", "b", "\ud800")}  # a lone surrogate in a jti is a value like any other
    assert len(keys) == 5 and all(len(k) == 16 for k in keys)
    assert digest("a", "b", "c") == digest("a", "b", "c")


def test_a_value_stays_taken_until_its_second_is_purged() -> None:
    index = SeenIndex(capacity=10)
    index.add(b"k1", 1000.5)
    index.add(b"k2", 1001.0)
    assert index.purge(1000.9) == 0 and index.seen(b"k1")  # its second (1000) is not over yet
    assert index.purge(1001.0) == 1 and not index.seen(b"k1") and index.seen(b"k2")


def test_a_forgotten_value_taken_again_is_not_purged_with_its_first_second() -> None:
    """A failed append frees a value; taken again with a later expiry, the first second's purge must
    not free it early (that would open a replay window)."""
    index = SeenIndex(capacity=10)
    index.add(b"k", 1000.0)
    index.forget(b"k")
    index.add(b"k", 2000.0)
    assert index.purge(1500.0) == 0 and index.seen(b"k")
    assert index.purge(2001.0) == 1 and not index.seen(b"k")


def test_a_full_index_or_a_live_deferred_value_sends_new_values_to_the_unique_table() -> None:
    index = SeenIndex(capacity=2)
    assert not index.full(100.0)
    index.add(b"a", 500.0)
    index.add(b"b", 500.0)
    assert index.full(100.0)
    index.purge(600.0)
    assert not index.full(600.0)
    index.defer(700.0)
    assert index.full(650.0) and index.full(700.0) and not index.full(700.5)


async def test_values_taken_before_a_restart_are_refused_after_it(tmp_path: Path) -> None:
    path, later = tmp_path / "s.db", time.time() + 600
    async with migrated_store(db.sqlite_url(path)) as store:
        assert await asyncio.gather(*[store.consume(KIND, "c", f"v-{n}", later) for n in range(5)]) == [True] * 5
        assert await store.consume(KIND, "c", "expired", time.time() - 5)
    assert _count(path, "one_time_log") == 6 and _count(path, "one_time_uses") == 0
    # a new process: the log is read back before anything is decided
    async with migrated_store(db.sqlite_url(path)) as store:
        assert await asyncio.gather(*[store.consume(KIND, "c", f"v-{n}", later) for n in range(5)]) == [False] * 5
        assert await store.consume(KIND, "c", "expired", later)  # its time was over: not read back
        assert await store.consume(KIND, "other-client", "v-0", later)


async def test_a_full_index_hands_over_to_the_unique_table_and_each_refuses_the_others_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(one_time, "MEMORY_CAPACITY", 3)
    path, later = tmp_path / "s.db", time.time() + 600
    async with migrated_store(db.sqlite_url(path)) as store:
        assert await asyncio.gather(*[store.consume(KIND, "c", f"m-{n}", later) for n in range(3)]) == [True] * 3
        assert await store.consume(KIND, "c", "u-0", later)  # full: the unique table decides
        assert _count(path, "one_time_log") == 3 and _count(path, "one_time_uses") == 1
        assert not await store.consume(KIND, "c", "m-1", later)  # in memory
        assert not await store.consume(KIND, "c", "u-0", later)  # in the unique table
        assert not await store.consume(KIND, "c", "u-0", later + 60)  # the same jti with another expiry
    async with migrated_store(db.sqlite_url(path)) as store:
        assert not await store.consume(KIND, "c", "m-2", later)
        assert not await store.consume(KIND, "c", "u-0", later)
        # the index is full again (3 values read back); and while `u-0` is live, new values go to the
        # unique table anyway, so a value it holds can never be taken again through the log
        assert await store.consume(KIND, "c", "u-1", later)
        assert _count(path, "one_time_uses") == 2


async def test_values_in_the_unique_table_from_before_the_upgrade_are_refused(tmp_path: Path) -> None:
    path, later = tmp_path / "s.db", time.time() + 600
    async with migrated_store(db.sqlite_url(path)):
        pass
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO one_time_uses VALUES (?, ?, ?, ?)", (KIND, "c", "old-jti", later))
        conn.commit()
    async with migrated_store(db.sqlite_url(path)) as store:
        assert not await store.consume(KIND, "c", "old-jti", later)
        assert await store.consume(KIND, "c", "new-jti", later)
        assert not await store.consume(KIND, "c", "new-jti", later)


async def test_the_unique_table_hands_back_once_its_values_expired(tmp_path: Path) -> None:
    """Values decided by the unique table while the index has room go into the index too: they never
    extend the hand-over, so the log takes over again once the table's older values expired."""
    path, later = tmp_path / "s.db", time.time() + 600
    async with migrated_store(db.sqlite_url(path)):
        pass
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO one_time_uses VALUES (?, ?, ?, ?)", (KIND, "c", "old-jti", time.time() + 0.3))
        conn.commit()
    async with migrated_store(db.sqlite_url(path)) as store:
        assert await store.consume(KIND, "c", "during", later)  # the old value is live: the unique table
        assert _count(path, "one_time_uses") == 2 and _count(path, "one_time_log") == 0
        await asyncio.sleep(0.4)
        assert await store.consume(KIND, "c", "after", later)  # the old value expired: the log again
        assert _count(path, "one_time_uses") == 2 and _count(path, "one_time_log") == 1
        assert not await store.consume(KIND, "c", "during", later)  # still known, from memory
        assert not await store.consume(KIND, "c", "after", later)


async def test_a_failed_append_fails_its_requests_and_frees_their_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody was answered for a value the log does not hold, so it may be used once more."""
    path, later = tmp_path / "s.db", time.time() + 600
    async with migrated_store(db.sqlite_url(path)) as store:
        assert await store.consume(KIND, "c", "warm-up", later)
        with monkeypatch.context() as patch:
            def broken(*args: object) -> None:
                raise sqlite3.OperationalError("disk I/O error")

            patch.setattr(one_time_sqlite.SingleUseWriter, "insert_now", broken)
            results = await asyncio.gather(store.consume(KIND, "c", "v", later), store.consume(KIND, "c", "v", later),
                                           return_exceptions=True)
        assert isinstance(results[0], sqlite3.OperationalError) and results[1] is False
        assert await store.consume(KIND, "c", "v", later)
        assert not await store.consume(KIND, "c", "v", later)
    assert _count(path, "one_time_log") == 2


async def test_a_failed_read_back_fails_the_request_and_the_next_one_tries_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, later = tmp_path / "s.db", time.time() + 600
    async with migrated_store(db.sqlite_url(path)) as store:
        assert await store.consume(KIND, "c", "v", later)
    load = one_time_sqlite.SingleUseWriter._load
    calls: list[int] = []

    def flaky(self: one_time_sqlite.SingleUseWriter, now: float) -> tuple[list[tuple[bytes, float]], float | None]:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return load(self, now)

    monkeypatch.setattr(one_time_sqlite.SingleUseWriter, "_load", flaky)
    async with migrated_store(db.sqlite_url(path)) as store:
        results = await asyncio.gather(store.consume(KIND, "c", "v", later), store.consume(KIND, "c", "w", later),
                                       return_exceptions=True)
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)  # nothing decided unread
        assert not await store.consume(KIND, "c", "v", later)
        assert await store.consume(KIND, "c", "w", later)
    assert len(calls) == 2


async def test_a_second_store_on_the_same_database_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    """One process decides a SQLite database's values in memory; a second (another `keyless serve` on
    the same file) would accept what the first took, so it stops at start instead."""
    path = tmp_path / "s.db"
    async with migrated_store(db.sqlite_url(path)) as first:
        await first.prepare()
        assert await first.consume(KIND, "c", "v", time.time() + 600)
        async with migrated_store(db.sqlite_url(path)) as second:
            with pytest.raises(one_time_sqlite.SingleUseHeld, match="one server process"):
                await second.prepare()
            with pytest.raises(one_time_sqlite.SingleUseHeld):
                await second.consume(KIND, "c", "v", time.time() + 600)  # nothing decided without the lock
    async with migrated_store(db.sqlite_url(path)) as again:
        await again.prepare()
        assert not await again.consume(KIND, "c", "v", time.time() + 600)
