"""One asyncpg connection held between a writer's batches, for the PostgreSQL writers of hot paths
(the sign-in rows, `keyless.store.logs`; single-use values, `keyless.store.one_time_pg`).

A connection checked out of the pool per batch paid the pool's liveness check (three round trips)
and SQLAlchemy's execution around each statement (issue 18); the writers run their statements on the
driver itself, on a connection kept between batches. A batch that fails drops the connection (it may
be broken), and the next one checks out a fresh one. A held connection found dead (PostgreSQL
restarted or failed over, or ended it while it sat idle) is dropped and the batch runs once more on
a fresh one: the pool's liveness check used to hide that, and a batch must not fail for it. `close`
returns the connection to the pool; the owner calls it before the engine is disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
# What a connection the server ended, or lost, raises on its next use.
CONNECTION_LOST = (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
                   asyncpg.exceptions.InterfaceError, ConnectionError, OSError)


class HeldConnection:
    """The held connection and the batches run on it, one at a time (asyncpg runs one operation at a
    time on a connection)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, batch: Callable[[Any], Awaitable[T]]) -> T:
        """`batch(asyncpg connection)` on the held connection, or on a fresh one from the pool (whose
        checkout checks that it is alive); at most once more, on a fresh one, when the held one is
        found dead. A batch that reached the database before its connection died runs twice: the
        caller's statements must make that harmless (one transaction, or a unique key that decides)."""
        async with self._lock:
            while True:
                held, self._conn = self._conn, None
                conn = held or await self._engine.connect()
                try:
                    result = await batch((await conn.get_raw_connection()).driver_connection)
                except BaseException as exc:
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                        await conn.close()
                    if held is not None and isinstance(exc, CONNECTION_LOST):
                        continue  # a fresh connection next: at most one more run
                    raise
                self._conn = conn
                return result

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
