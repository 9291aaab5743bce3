"""Single-use values (assertion `jti`s, join tokens) with group commit.

The rule is the database's: a value is used once because a unique key refuses the second insert,
on every replica alike. Doing that as one transaction per request cost more than a whole
client-secret token (measured ~0.65 ms on SQLite), so concurrent requests share one statement:
`INSERT … ON CONFLICT DO NOTHING RETURNING` inserts a batch and names exactly the rows that were
new. On SQLite a batch waits `GATHER_TURNS` turns of the event loop for the values of other requests
before it is written. One batch is in flight at a time; requests that arrive meanwhile form the next
one. Within a batch the first request for a value wins, as it would have in sequence. On PostgreSQL
(asyncpg) the batch is one prepared statement on a connection held between batches
(`keyless.store.one_time_pg`); `release` returns that connection to the pool before the engine is
disposed.

On SQLite the batch is written on the event loop's own thread, with the standard `sqlite3` module
on one dedicated connection, when that takes no waiting: one autocommit statement (SQLite makes a
lone statement its own transaction: it takes the write lock, writes and commits at its last step),
a plain `INSERT` for the usual batch of new values (a statement that breaks the unique key writes
nothing; only then does the `ON CONFLICT DO NOTHING RETURNING` form name the new rows). The
connection never checkpoints (`wal_autocheckpoint=0`), so a commit is page writes to the WAL and
no fsync (WAL with `synchronous=NORMAL`, as every connection of the store, `keyless.store.db`; a
database found in another journal mode has every batch written by the worker).
What could wait goes to one worker thread: a batch that found the write lock taken by another
connection (the sign-in rows hold it a few ms every 256 tokens), and every `SQLITE_PURGE_EVERY`
values the purge of at most `SQLITE_PURGE_LIMIT` expired rows (twice the rate they come in, in
chunks: deleting 1,000 rows at once held the write lock and that batch 35-45 ms on a slow machine,
each row a random primary-key page). Every `CHECKPOINT_EVERY` values a passive checkpoint runs on a
connection and thread of its own (`_Checkpointer`), beside the batches: it costs nothing when the
other connections checkpoint, as they do at SQLite's default of 1,000 pages, and keeps the WAL
bounded when they do not; it copies and syncs pages for milliseconds, which on the batches' own
connection held every batch behind it (all requests waiting on a `jti`; the private_key_jwt rows'
p99, issue 18). A passive checkpoint takes no lock a writer needs.

Issue 18: a thread hop per batch cost two context switches and a wake-up of the loop, and, with the
loop busy, a wait for the GIL at each of the thread's steps (Python hands it to a waiting thread
only after its 5 ms switch interval); `BEGIN IMMEDIATE`/`COMMIT` and the `RETURNING` rows ~30 % of
the statement's CPU. The price is the statement's own time on the loop (~0.3 ms for 8
values on a slow machine), CPU the request spends either way.

The worker does not wait in SQLite's busy handler either: that one sleeps 1, 2, 5, 10 ms ... between
attempts, so a batch that met another writer slept up to 8-18 ms after the lock was free, and every
request in it with it. `_locked_retry` tries again every 0.1-1 ms instead, for the same 5 s at most.
A refused attempt changed nothing (a statement that cannot take the lock writes nothing), so
trying it again is the same insert and the unique key still decides every value.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.store import tables as t
from keyless.store.one_time_pg import PgOneTimeWriter

log = logging.getLogger("keyless.store")
Key = tuple[str, str, str]
T = TypeVar("T")
PURGE_EVERY = 1000  # PostgreSQL: values between two purges
SQLITE_PURGE_EVERY, SQLITE_PURGE_LIMIT = 100, 200  # SQLite: values between purges, rows one may delete
CHECKPOINT_EVERY = 1000  # SQLite: values between two passive checkpoints (`_Checkpointer`)
GATHER_TURNS = 2  # SQLite: turns of the event loop a batch waits for more values before it is written


_SQLITE_INSERT = (
    "INSERT INTO one_time_uses (kind, owner, value, expires_at) VALUES {rows} "
    "ON CONFLICT DO NOTHING RETURNING kind, owner, value"
)
_SQLITE_INSERT_ALL = "INSERT INTO one_time_uses (kind, owner, value, expires_at) VALUES {rows}"
_SQLITE_PURGE = ("DELETE FROM one_time_uses WHERE rowid IN "
                 "(SELECT rowid FROM one_time_uses WHERE expires_at < ? LIMIT ?)")  # by ix_one_time_uses_expires
_STATEMENTS: dict[tuple[str, int], str] = {}


def _sqlite_statement(template: str, count: int) -> str:
    """`template` for `count` rows, made once per batch size."""
    sql = _STATEMENTS.get((template, count))
    if sql is None:
        sql = template.format(rows=",".join(["(?,?,?,?)"] * count))
        if len(_STATEMENTS) >= 256:
            _STATEMENTS.clear()
        _STATEMENTS[(template, count)] = sql
    return sql
LOCK_WAIT = 5.0  # seconds a batch waits for another writer, as `busy_timeout=5000` did
_RETRY_FIRST, _RETRY_MAX = 0.0001, 0.001  # seconds between attempts: doubling from 0.1 ms to 1 ms


_BUSY, _LOCKED = 5, 6  # SQLite's primary result codes (the low byte of an extended code)


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the write lock (nothing was written)."""
    return exc.sqlite_errorcode & 0xFF in (_BUSY, _LOCKED)


def _locked_retry(attempt: Callable[[], T]) -> T:
    """`attempt()`, tried again while another connection holds the write lock, for `LOCK_WAIT` at most."""
    deadline, pause = time.monotonic() + LOCK_WAIT, _RETRY_FIRST
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _RETRY_MAX)


class _OwnThread:
    """A connection made on first use and a worker thread of its own, where the connection is closed."""

    def __init__(self, path: str, name: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None
        self._closed = False

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


class _SqliteWriter(_OwnThread):
    """One connection: a batch on the caller's thread when the write lock is free (`insert_now`),
    else, and for the purge, on one worker thread (`insert`); never both at once (one batch at a time)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "keyless-one-time")
        self._wal = False  # the loop's thread writes only in WAL mode (a commit without an fsync)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # autocommit (isolation_level=None): each statement is its own transaction; no busy
            # handler (`insert_now` must not wait, `_locked_retry` waits in the worker); no automatic
            # checkpoint (its fsyncs would run inside a batch's statement, `_Checkpointer` does it)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # `keyless.store.db` sets it
            self._conn = conn
        return self._conn

    @staticmethod
    def _statement(conn: sqlite3.Connection, rows: list[tuple[str, str, str, float]]) -> set[Key]:
        """The values of `rows` this statement inserted (one transaction); raises `OperationalError`
        SQLITE_BUSY without writing anything when another connection holds the write lock."""
        params = [v for row in rows for v in row]
        try:  # the usual batch: every value new, one step of one statement
            conn.execute(_sqlite_statement(_SQLITE_INSERT_ALL, len(rows)), params)
        except sqlite3.IntegrityError:  # a value was used before: that statement wrote nothing
            return set(conn.execute(_sqlite_statement(_SQLITE_INSERT, len(rows)), params).fetchall())
        return {(r[0], r[1], r[2]) for r in rows}

    def insert_now(self, rows: list[tuple[str, str, str, float]]) -> set[Key] | None:
        """The batch, written on the caller's thread; None (nothing written) when that would wait: the
        write lock is another connection's, or the database is not in WAL mode (a commit would fsync)."""
        conn = self._connection()
        if not self._wal:
            return None
        try:
            return self._statement(conn, rows)
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                return None
            raise

    def _insert(self, rows: list[tuple[str, str, str, float]], purge_before: float | None) -> set[Key]:
        conn = self._connection()
        if purge_before is not None:  # first: a batch that fails then has inserted nothing
            _locked_retry(lambda: conn.execute(_SQLITE_PURGE, (purge_before, SQLITE_PURGE_LIMIT)))
        return _locked_retry(lambda: self._statement(conn, rows))

    async def insert(self, rows: list[tuple[str, str, str, float]], purge_before: float | None) -> set[Key]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._insert, rows, purge_before)


class _Checkpointer(_OwnThread):
    """Passive checkpoints of the database, on a connection and thread of their own; one at a time, and
    a request for one while one runs is that one."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "keyless-checkpoint")
        self._running: asyncio.Future[None] | None = None

    def _checkpoint(self) -> None:
        """Copy what the WAL holds beyond the database back into it: nothing to do when another
        connection already did; a checkpoint already running elsewhere is enough."""
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=0")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                raise

    def start(self) -> asyncio.Future[None]:
        """The checkpoint under way, or a new one (none once closed: a batch in flight at shutdown)."""
        if self._running is None:
            loop = asyncio.get_running_loop()
            if self._closed:
                done: asyncio.Future[None] = loop.create_future()
                done.set_result(None)
                return done
            self._running = loop.run_in_executor(self._executor, self._checkpoint)
            self._running.add_done_callback(self._done)
        return self._running

    def _done(self, done: asyncio.Future[None]) -> None:
        self._running = None
        if not done.cancelled() and done.exception() is not None:  # the next one tries again
            log.warning("one-time uses: checkpoint failed", exc_info=done.exception(),
                        extra={"event": "checkpoint_failed"})


class OneTimeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        database = engine.url.database
        on_file = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._sqlite = _SqliteWriter(database) if on_file and database else None
        self._checkpointer = _Checkpointer(database) if on_file and database else None
        self._pg = PgOneTimeWriter(engine) if engine.dialect.driver == "asyncpg" else None
        self._purge_before: float | None = None  # PostgreSQL: a purge due once the batch is answered
        self._pending: list[tuple[Key, float, asyncio.Future[bool]]] = []
        self._flushing = False
        self._inserted = 0
        self._purges = 0

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._checkpointer is not None:
            self._checkpointer.close()

    async def release(self) -> None:
        """Return the connection the PostgreSQL writer holds to the pool (before the engine is disposed)."""
        if self._pg is not None:
            await self._pg.close()

    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append(((kind, owner, value), expires_at, future))
        if not self._flushing:
            self._flushing = True
            self._gather(loop, GATHER_TURNS if self._sqlite is not None else 0)
        return await future

    def _gather(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        """Start the batch after `turns` more turns of the loop, so that it takes the values of the
        requests those turns carry to their `consume`. On SQLite a batch is written within one turn
        (`insert_now`), so without the wait it held little more than the values of the turn that
        started it: 3.2-3.4 on average at c=8 with private_key_jwt, 7.9 with two turns; the statement's
        cost a value (mostly the pages its commit writes to the WAL: a random leaf of the unique key for
        each value, and the last pages of the table and of the `expires_at` index for the whole batch)
        fell from 21-25 to 16-21 µs of CPU (issue 18, docs/benchmarks.md session 11). A turn costs
        microseconds when the loop is idle: a lone client's requests take as long as before. Not on
        PostgreSQL: there a batch is a round trip during which the next one gathers anyway, and the
        server waits for it, so delaying its start cost 10 % of the tokens a second at c=8."""
        if turns > 0:
            loop.call_soon(self._gather, loop, turns - 1)
        else:
            loop.create_task(self._drain())

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
                if self._pg is not None and self._purge_before is not None:
                    before, self._purge_before = self._purge_before, None
                    await self._purge_pg(self._pg, before)
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
            if self._inserted >= SQLITE_PURGE_EVERY:
                self._inserted, purge = 0, time.time()
                self._purges += 1
                due = self._purges % max(1, CHECKPOINT_EVERY // SQLITE_PURGE_EVERY) == 0
                if due and self._checkpointer is not None:
                    self._checkpointer.start()  # beside this batch, not before it
            batch_rows = [(*k, e) for k, e in rows.items()]
            if purge is None:
                fresh = self._sqlite.insert_now(batch_rows)
                if fresh is not None:
                    return fresh
            return await self._sqlite.insert(batch_rows, purge)
        if self._pg is not None:
            inserted = await self._pg.insert([(*k, e) for k, e in rows.items()])
            self._inserted += len(inserted)
            if self._inserted >= PURGE_EVERY:  # keep the table to live entries without a scheduler
                self._inserted, self._purge_before = 0, time.time()
            return inserted
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

    @staticmethod
    async def _purge_pg(pg: PgOneTimeWriter, before: float) -> None:
        """The purge a PostgreSQL batch made due, after that batch's answers (the next batch waits for it)."""
        try:
            await pg.purge(before)
        except Exception:  # the values stay until the next purge; no request fails for it
            log.warning("one-time uses: purge failed", exc_info=True, extra={"event": "purge_failed"})
