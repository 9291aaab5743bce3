"""One `sqlite3` connection on one worker thread, for write paths that run hot on a SQLite file.

Through aiosqlite every call is a hop of its own to the driver's thread (begin, each statement,
commit), and SQLAlchemy's execution runs around each: for a batch of log rows that cost more CPU than
SQLite's own work on them (issue 18). Here a whole transaction is one function run on the writer's
thread: one hop per batch. Readers keep the engine: under WAL they see each commit as soon as it
returns. `keyless.store.one_time` does the same for single-use values with its own writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
# The pragmas of `keyless.store.db`'s own connections, so both kinds behave alike.
PRAGMAS = ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000")


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of `engine`'s database when it is a SQLite file (an in-memory one is private to the
    engine's own connection, so it keeps the engine's path)."""
    database = engine.url.database
    return database if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:") else None


class SqliteWriter:
    """One connection, one thread: each transaction is a single hop from the event loop."""

    def __init__(self, path: str, name: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"keyless-{name}")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in PRAGMAS:
                self._conn.execute(f"PRAGMA {pragma}")
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # wait for another writer (busy_timeout), never fail half-way
        try:
            result = work(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` in one transaction on the writer's thread: committed when it returns,
        rolled back when it raises."""
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_transaction, work)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the connection on its own thread, then end the thread; idempotent."""
        if not self._closed:
            self._closed = True
            self._executor.submit(self._disconnect)
            self._executor.shutdown(wait=True)
