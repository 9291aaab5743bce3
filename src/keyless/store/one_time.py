"""Single-use values (assertion `jti`s, join tokens) with group commit.

The rule is the database's: a value is used once because a unique key refuses the second insert,
on every replica alike. Doing that as one transaction per request cost more than a whole
client-secret token (measured ~0.65 ms on SQLite), so concurrent requests share one statement:
`INSERT … ON CONFLICT DO NOTHING RETURNING` inserts a batch and names exactly the rows that were
new. One batch is in flight at a time; requests that arrive meanwhile form the next one. Within a
batch the first request for a value wins, as it would have in sequence.

On SQLite the batch goes through one dedicated connection on one worker thread with the standard
`sqlite3` module: a single thread hop per batch instead of one per statement through the async
driver (begin, insert, fetch, commit), which was most of the remaining cost (~0.5 ms per batch).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.store import tables as t

Key = tuple[str, str, str]
PURGE_EVERY = 1000


_SQLITE_INSERT = (
    "INSERT INTO one_time_uses (kind, owner, value, expires_at) VALUES {rows} "
    "ON CONFLICT DO NOTHING RETURNING kind, owner, value"
)
_SQLITE_PURGE = "DELETE FROM one_time_uses WHERE expires_at < ?"


class _SqliteWriter:
    """One connection, one thread: every batch is a single hop and a single transaction."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyless-one-time")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _insert(self, rows: list[tuple[str, str, str, float]], purge_before: float | None) -> set[Key]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            sql = _SQLITE_INSERT.format(rows=",".join(["(?,?,?,?)"] * len(rows)))
            inserted = {(r[0], r[1], r[2]) for r in conn.execute(sql, [v for row in rows for v in row]).fetchall()}
            if purge_before is not None:
                conn.execute(_SQLITE_PURGE, (purge_before,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return inserted

    async def insert(self, rows: list[tuple[str, str, str, float]], purge_before: float | None) -> set[Key]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._insert, rows, purge_before)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(shut)
        self._executor.shutdown(wait=True)


class OneTimeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        database = engine.url.database
        self._sqlite = (
            _SqliteWriter(database) if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
            else None
        )
        self._pending: list[tuple[Key, float, asyncio.Future[bool]]] = []
        self._flushing = False
        self._inserted = 0

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()

    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(((kind, owner, value), expires_at, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    fresh = await self._write(batch)
                except Exception as exc:
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                claimed: set[Key] = set()
                for key, _, future in batch:
                    won = key in fresh and key not in claimed
                    claimed.add(key)
                    if not future.done():
                        future.set_result(won)
        finally:
            self._flushing = False

    async def _write(self, batch: Sequence[tuple[Key, float, asyncio.Future[bool]]]) -> set[Key]:
        u = t.one_time_uses
        rows: dict[Key, float] = {}
        for key, expires_at, _ in batch:
            rows.setdefault(key, expires_at)
        if self._sqlite is not None:
            self._inserted += len(rows)
            purge = None
            if self._inserted >= PURGE_EVERY:
                self._inserted, purge = 0, time.time()
            return await self._sqlite.insert([(*k, e) for k, e in rows.items()], purge)
        statement = (
            self._insert(u)
            .values([{"kind": k[0], "owner": k[1], "value": k[2], "expires_at": e} for k, e in rows.items()])
            .on_conflict_do_nothing()
            .returning(u.c.kind, u.c.owner, u.c.value)
        )
        async with self._engine.begin() as conn:
            inserted = {(r.kind, r.owner, r.value) for r in (await conn.execute(statement)).all()}
            self._inserted += len(inserted)
            if self._inserted >= PURGE_EVERY:  # keep the table to live entries without a scheduler
                self._inserted = 0
                await conn.execute(delete(u).where(u.c.expires_at < time.time()))
        return inserted
