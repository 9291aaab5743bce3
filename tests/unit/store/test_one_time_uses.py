"""Single-use values in the shared store: a unique insert decides, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from keyless.store import db, one_time, one_time_memory, one_time_pg, one_time_sqlite
from tests.support.server import end_other_connections
from tests.unit.store.one_time_support import migrated_store


def _key(value: str) -> bytes:
    return one_time_memory.digest("client_assertion", "c", value)


async def test_first_use_wins_and_kinds_and_owners_are_separate(url: str) -> None:
    async with migrated_store(url) as store:
        later = time.time() + 600
        assert await store.consume("client_assertion", "client-a", "jti-1", later)
        assert not await store.consume("client_assertion", "client-a", "jti-1", later)
        assert await store.consume("client_assertion", "client-b", "jti-1", later)  # B09: per owner
        assert await store.consume("join_token", "client-a", "jti-1", later)  # B09: per kind


async def test_concurrent_consumers_exactly_one_wins(url: str) -> None:
    """B07 at the store: many simultaneous consumers of one value, one success."""
    async with migrated_store(url) as store:
        later = time.time() + 600
        for n in range(5):
            results = await asyncio.gather(
                *[store.consume("client_assertion", "c", f"race-{n}", later) for _ in range(8)]
            )
            assert sorted(results) == [False] * 7 + [True]


async def test_a_used_value_in_a_batch_of_new_ones(url: str) -> None:
    """The batch's plain insert is refused as a whole when one value was used before; the new values
    of that batch are still consumed once and the used one is refused (the RETURNING fallback)."""
    async with migrated_store(url) as store:
        later = time.time() + 600
        assert await store.consume("client_assertion", "c", "used", later)
        values = ["new-1", "used", "new-2", "new-1", "new-3"]
        results = await asyncio.gather(*[store.consume("client_assertion", "c", v, later) for v in values])
        assert results == [True, False, True, False, True]  # within a batch the first request wins
        again = await asyncio.gather(*[store.consume("client_assertion", "c", v, later) for v in values])
        assert again == [False] * 5


async def test_sqlite_values_reaching_the_store_in_the_next_turns_share_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a batch waits `GATHER_TURNS` turns of the loop for more values (one statement, one
    commit for them all: issue 18); a value arriving after that forms the next batch. Each is still
    decided once."""
    batches: list[list[bytes]] = []
    write = one_time.OneTimeStore._write

    async def spy(self: one_time.OneTimeStore, batch: list[tuple[one_time.Key, float, Any]],
                  logged: list[tuple[bytes, float, Any]]) -> set[one_time.Key]:
        assert not batch  # on SQLite every value goes to the log until the index is full
        batches.append([key for key, _, _ in logged])
        return await write(self, batch, logged)

    monkeypatch.setattr(one_time.OneTimeStore, "_write", spy)
    async with migrated_store(db.sqlite_url(tmp_path / "s.db")) as store:
        later = time.time() + 600

        async def after(turns: int, value: str) -> bool:
            for _ in range(turns):
                await asyncio.sleep(0)  # one turn of the loop
            return await store.consume("client_assertion", "c", value, later)

        first = await asyncio.gather(*[after(n, f"v-{n}") for n in range(one_time.GATHER_TURNS + 1)], after(0, "v-0"))
        assert first == [True] * (one_time.GATHER_TURNS + 1) + [False]  # the repeat was refused at once
        assert batches == [[_key(f"v-{n}") for n in range(one_time.GATHER_TURNS + 1)]]
        batches.clear()
        late = await asyncio.gather(after(0, "w-0"), after(one_time.GATHER_TURNS + 3, "w-late"))
        assert late == [True, True]
        assert batches == [[_key("w-0")], [_key("w-late")]]


async def test_sqlite_waits_for_another_writer_and_then_decides(tmp_path: Path) -> None:
    """Another connection's write transaction: the batch waits (without SQLite's busy handler) and
    is decided once the lock is free, each value exactly once."""
    path = tmp_path / "s.db"
    async with migrated_store(db.sqlite_url(path)) as store:
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
    async with migrated_store(db.sqlite_url(tmp_path / "s.db")) as store:
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
    writer = one_time_sqlite.SingleUseWriter(str(path))
    try:
        later = time.time() + 600
        assert writer.insert_now([("client_assertion", "c", "v", later)]) is None
        assert await writer.insert([("client_assertion", "c", "v", later)], None) == {("client_assertion", "c", "v")}
        assert await writer.insert([("client_assertion", "c", "v", later)], None) == set()
    finally:
        writer.close()


async def test_sqlite_purge_deletes_a_bounded_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One purge deletes at most `SQLITE_PURGE_LIMIT` expired rows (a long delete would hold a batch)."""
    monkeypatch.setattr(one_time_sqlite, "SQLITE_PURGE_LIMIT", 2)
    path = tmp_path / "s.db"
    async with migrated_store(db.sqlite_url(path)) as store:
        for n in range(5):
            assert await store.consume("client_assertion", "c", f"old-{n}", time.time() - 1)
        writer = store._one_time._sqlite
        assert writer is not None
        await writer.insert([], time.time(), [(_key("new"), time.time() + 600)])
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM one_time_log").fetchone()[0] == 4  # 3 old, 1 new


async def test_sqlite_checkpoints_beside_the_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `CHECKPOINT_EVERY` values a passive checkpoint runs on its own connection and thread: a slow
    one (copying and syncing pages) holds up no batch, and one is asked for while it runs is that one."""
    monkeypatch.setattr(one_time, "SQLITE_PURGE_EVERY", 2)
    monkeypatch.setattr(one_time, "CHECKPOINT_EVERY", 2)
    started, release, runs = threading.Event(), threading.Event(), []
    checkpoint = one_time_sqlite.Checkpointer._checkpoint

    def slow(self: one_time_sqlite.Checkpointer) -> None:
        runs.append(1)
        started.set()
        release.wait(10)
        checkpoint(self)

    monkeypatch.setattr(one_time_sqlite.Checkpointer, "_checkpoint", slow)
    path = tmp_path / "s.db"
    async with migrated_store(db.sqlite_url(path)) as store:
        later = time.time() + 600
        for n in range(4):
            assert await store.consume("client_assertion", "c", f"v-{n}", later)
        assert await asyncio.to_thread(started.wait, 5)
        for n in range(4, 12):  # the checkpoint is still running: the batches go on, on their own thread
            assert await asyncio.wait_for(store.consume("client_assertion", "c", f"v-{n}", later), 5)
        assert not await store.consume("client_assertion", "c", "v-0", later)
        assert len(runs) == 1  # asked for again meanwhile: that was the same checkpoint
        checkpointer = store._one_time._checkpointer
        assert checkpointer is not None
        running = checkpointer.start()
        release.set()
        await running
        await checkpointer.start()  # a new one: every value above is in the database file now
        copy = tmp_path / "copy.db"
        copy.write_bytes(path.read_bytes())  # the database file alone, without its WAL
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("SELECT count(*) FROM one_time_log").fetchone()[0] == 12


async def test_a_failed_checkpoint_is_logged_and_the_next_one_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A checkpoint that fails for another reason than a lock is a warning, not a failed batch; the next
    request for one starts anew; once closed, nothing starts (a batch in flight at shutdown)."""
    path = tmp_path / "s.db"
    async with migrated_store(db.sqlite_url(path)):
        checkpointer = one_time_sqlite.Checkpointer(str(path))
        calls: list[int] = []

        def broken(self: one_time_sqlite.Checkpointer) -> None:
            calls.append(1)
            raise sqlite3.OperationalError("disk I/O error")

        with monkeypatch.context() as patch:
            patch.setattr(one_time_sqlite.Checkpointer, "_checkpoint", broken)
            with caplog.at_level("WARNING", logger="keyless.store"):
                with pytest.raises(sqlite3.OperationalError):
                    await checkpointer.start()
                await asyncio.sleep(0)  # the done callback
            assert [r.getMessage() for r in caplog.records] == ["one-time uses: checkpoint failed"]
            with pytest.raises(sqlite3.OperationalError):
                await checkpointer.start()  # a new one, not the failed one kept
            assert len(calls) == 2
        checkpointer.close()
        assert await checkpointer.start() is None  # closed: an already finished future, no thread


# -- PostgreSQL: one statement a batch on a held connection (keyless.store.one_time_pg) --------------
async def test_postgresql_batches_share_one_held_connection_until_release(pg_url: str) -> None:
    async with migrated_store(pg_url) as store:
        later = time.time() + 600
        for n in range(3):
            assert await asyncio.gather(*[store.consume("client_assertion", "c", f"held-{n}-{i}", later)
                                          for i in range(4)]) == [True] * 4
        pool = store._one_time._engine.pool
        assert pool.checkedout() == 1  # the writer's, kept between batches
        await store.release()
        assert pool.checkedout() == 0


async def test_postgresql_replicas_on_one_database_decide_each_value_once(pg_url: str) -> None:
    """Two stores on two engines (two replicas): the unique key decides, whichever batch comes first."""
    async with migrated_store(pg_url) as first, migrated_store(pg_url) as second:
        later = time.time() + 600
        values = [f"shared-{i}" for i in range(20)]
        results = await asyncio.gather(*[s.consume("client_assertion", "c", v, later)
                                         for v in values for s in (first, second)])
        assert [results[i] + results[i + 1] for i in range(0, 40, 2)] == [1] * 20  # each value won once
        assert not await first.consume("client_assertion", "c", "shared-0", later)
        assert not await second.consume("client_assertion", "c", "shared-0", later)


async def test_postgresql_a_connection_the_server_ended_is_replaced_without_failing_a_batch(pg_url: str) -> None:
    """PostgreSQL restarted or failed over while the writer's connection sat idle: the next batch runs
    on a fresh connection, and a used value is still refused."""
    async with migrated_store(pg_url) as store:
        later = time.time() + 600
        assert await store.consume("client_assertion", "c", "before", later)
        await end_other_connections(pg_url)
        assert await asyncio.gather(store.consume("client_assertion", "c", "after", later),
                                    store.consume("client_assertion", "c", "before", later)) == [True, False]


async def test_postgresql_purges_expired_values_between_batches(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(one_time, "PURGE_EVERY", 3)
    async with migrated_store(pg_url) as store:
        engine = store._one_time._engine
        now = time.time()
        assert await store.consume("client_assertion", "c", "gone", now - 1)  # already expired
        for i in range(3):
            assert await store.consume("client_assertion", "c", f"live-{i}", now + 600)
        async with engine.connect() as conn:
            left = (await conn.exec_driver_sql("SELECT value FROM one_time_uses ORDER BY value")).scalars().all()
        assert left == ["live-0", "live-1", "live-2"]


async def test_postgresql_a_failed_purge_is_logged_and_fails_no_request(
        pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(one_time, "PURGE_EVERY", 2)
    monkeypatch.setattr(one_time_pg, "_PURGE", "DELETE FROM no_such_table WHERE expires_at < $1")
    async with migrated_store(pg_url) as store:
        later = time.time() + 600
        with caplog.at_level("WARNING", logger="keyless.store"):
            assert await asyncio.gather(*[store.consume("client_assertion", "c", f"p-{i}", later)
                                          for i in range(2)]) == [True, True]  # then the purge fails
            assert await store.consume("client_assertion", "c", "next", later)  # on a fresh connection
            assert not await store.consume("client_assertion", "c", "p-0", later)
        assert [r.getMessage() for r in caplog.records] == ["one-time uses: purge failed"]
