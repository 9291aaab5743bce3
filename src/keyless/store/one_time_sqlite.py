"""The SQLite writer of single-use values (`keyless.store.one_time`): the unique table's batches, the
log's appends (`keyless.store.one_time_memory`), their purge and the passive checkpoints.

On SQLite the batch is written on the event loop's own thread, with the standard `sqlite3` module
on one dedicated connection, when that takes no waiting: one autocommit statement (SQLite makes a
lone statement its own transaction: it takes the write lock, writes and commits at its last step),
a plain `INSERT` for the usual batch of new values (a statement that breaks the unique key writes
nothing; only then does the `ON CONFLICT DO NOTHING RETURNING` form name the new rows). The
connection never checkpoints (`wal_autocheckpoint=0`), so a commit is page writes to the WAL and
no fsync (WAL with `synchronous=NORMAL`, as every connection of the store, `keyless.store.db`; a
database found in another journal mode has every batch written by the worker).
What could wait goes to one worker thread: a batch that found the write lock taken by another
connection (the sign-in rows hold it a few ms every 256 tokens), and every `one_time.SQLITE_PURGE_EVERY`
values the purge of at most `SQLITE_PURGE_LIMIT` expired rows of each table (twice the rate they come in, in
chunks: deleting 1,000 rows at once held the write lock and that batch 35-45 ms on a slow machine,
each row a random primary-key page). Every `one_time.CHECKPOINT_EVERY` values a passive checkpoint runs on a
connection and thread of its own (`Checkpointer`), beside the batches: it costs nothing when the
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

The log's appends take the same way: a batch appends its log rows in one statement, then inserts its
unique-table rows (if any) in another; a batch tried again may append a log row twice, which the
read-back at start takes once. The writer also holds the database's single-use
lock (`LOCK_SUFFIX`, an flock) from the moment it reads the log back until it is closed, so one
process at a time decides values in memory (`SingleUseHeld`).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from keyless.errors import ConfigurationError

log = logging.getLogger("keyless.store")
Key = tuple[str, str, str]
Row = tuple[str, str, str, float]  # a value for the unique table, with its expires_at
LogRow = tuple[bytes, float]  # a value for the log: its digest (`one_time_memory.digest`), expires_at
T = TypeVar("T")
LOCK_SUFFIX = "-single-use.lock"  # beside the database: held by the one process that decides in memory
SQLITE_PURGE_LIMIT = 200  # rows one purge may delete from each table

_SQLITE_INSERT = (
    "INSERT INTO one_time_uses (kind, owner, value, expires_at) VALUES {rows} "
    "ON CONFLICT DO NOTHING RETURNING kind, owner, value"
)
_SQLITE_INSERT_ALL = "INSERT INTO one_time_uses (kind, owner, value, expires_at) VALUES {rows}"
_SQLITE_PURGE = ("DELETE FROM {table} WHERE rowid IN "
                 "(SELECT rowid FROM {table} WHERE expires_at < ? LIMIT ?)")  # by the table's `expires_at` index
_SQLITE_PURGES = tuple(_SQLITE_PURGE.format(table=table) for table in ("one_time_uses", "one_time_log"))
_SQLITE_LOG = "INSERT INTO one_time_log (digest, expires_at) VALUES {rows}"
_SQLITE_LOAD = "SELECT digest, expires_at FROM one_time_log WHERE expires_at >= ?"
_SQLITE_DEFERRED = "SELECT max(expires_at) FROM one_time_uses"
_STATEMENTS: dict[tuple[str, int], str] = {}


class SingleUseHeld(ConfigurationError):
    """Another process decides this SQLite database's single-use values (the CLI's one error line)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"another Keyless server is using the SQLite database {path}: a SQLite database serves "
                         "one server process (run replicas on PostgreSQL)")


def _sqlite_statement(template: str, count: int) -> str:
    """`template` for `count` rows, made once per batch size."""
    sql = _STATEMENTS.get((template, count))
    if sql is None:
        sql = template.format(rows=",".join(["(?,?)" if template is _SQLITE_LOG else "(?,?,?,?)"] * count))
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


class OwnThread:
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


class SingleUseWriter(OwnThread):
    """One connection: a batch on the caller's thread when the write lock is free (`insert_now`),
    else, and for the purge, on one worker thread (`insert`); never both at once (one batch at a time)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "keyless-one-time")
        self._wal = False  # the loop's thread writes only in WAL mode (a commit without an fsync)
        self._lock: int | None = None

    def close(self) -> None:
        super().close()
        if self._lock is not None:
            os.close(self._lock)  # the lock goes with the descriptor
            self._lock = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # autocommit (isolation_level=None): each statement is its own transaction; no busy
            # handler (`insert_now` must not wait, `_locked_retry` waits in the worker); no automatic
            # checkpoint (its fsyncs would run inside a batch's statement, `Checkpointer` does it)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # `keyless.store.db` sets it
            self._conn = conn
        return self._conn

    @staticmethod
    def _statement(conn: sqlite3.Connection, rows: list[Row], log: list[LogRow]) -> set[Key]:
        """The values of `rows` this statement inserted (one transaction), after `log` is appended (one
        more); raises `OperationalError` SQLITE_BUSY without writing anything when another connection
        holds the write lock (were it the second statement, the worker appends `log` again: the log has
        no unique key, and a value in it twice is read back once)."""
        if log:
            conn.execute(_sqlite_statement(_SQLITE_LOG, len(log)), [v for row in log for v in row])
        if not rows:
            return set()
        params = [v for row in rows for v in row]
        try:  # the usual batch: every value new, one step of one statement
            conn.execute(_sqlite_statement(_SQLITE_INSERT_ALL, len(rows)), params)
        except sqlite3.IntegrityError:  # a value was used before: that statement wrote nothing
            return set(conn.execute(_sqlite_statement(_SQLITE_INSERT, len(rows)), params).fetchall())
        return {(r[0], r[1], r[2]) for r in rows}

    def insert_now(self, rows: list[Row], log: list[LogRow] | None = None) -> set[Key] | None:
        """The batch, written on the caller's thread; None (nothing written) when that would wait: the
        write lock is another connection's, or the database is not in WAL mode (a commit would fsync)."""
        conn = self._connection()
        if not self._wal:
            return None
        try:
            return self._statement(conn, rows, log or [])
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                return None
            raise

    def _insert(self, rows: list[Row], purge_before: float | None, log: list[LogRow]) -> set[Key]:
        conn = self._connection()
        if purge_before is not None:  # first: a batch that fails then has inserted nothing
            for purge in _SQLITE_PURGES:
                _locked_retry(partial(conn.execute, purge, (purge_before, SQLITE_PURGE_LIMIT)))
        return _locked_retry(lambda: self._statement(conn, rows, log))

    async def insert(self, rows: list[Row], purge_before: float | None, log: list[LogRow] | None = None) -> set[Key]:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._insert, rows, purge_before, log or [])

    def _take_lock(self) -> None:
        """Hold the database's single-use lock, or refuse: a second process deciding values in its own
        memory would accept what the first took (`one_time_memory`)."""
        if self._lock is not None:
            return
        fd = os.open(self._path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SingleUseHeld(self._path) from None
        self._lock = fd

    def _load(self, now: float) -> tuple[list[tuple[bytes, float]], float | None]:
        self._take_lock()
        conn = self._connection()
        rows = conn.execute(_SQLITE_LOAD, (now,)).fetchall()
        return rows, conn.execute(_SQLITE_DEFERRED).fetchone()[0]

    async def load(self, now: float) -> tuple[list[tuple[bytes, float]], float | None]:
        """The log's live rows and the unique table's latest `expires_at` (`SeenIndex.load`)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._load, now)


class Checkpointer(OwnThread):
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


