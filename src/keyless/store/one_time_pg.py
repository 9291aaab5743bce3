"""Single-use values on PostgreSQL (asyncpg): one statement a batch, on a connection held between batches.

The rule is `keyless.store.one_time`'s: the unique key of `one_time_uses` decides, on every replica
alike. Through SQLAlchemy a batch cost a pool checkout with its liveness check, `BEGIN`, the insert
and `COMMIT`: about six round trips, while the requests of the batch and of the next one waited; a
private_key_jwt token on PostgreSQL came out at 40 % of SQLite's rate (issue 18, docs/benchmarks.md,
"Session 10"). Here the batch is one prepared statement run in autocommit (PostgreSQL makes a lone
statement its own transaction), its rows passed as four arrays so that every batch size is the same
statement: one round trip. The connection is held between batches, as the sign-in writer holds its
own (`keyless.store.logs`); a batch that fails drops it (it may be broken) and the next one checks
out a fresh one; `close` returns it to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Key = tuple[str, str, str]

# RETURNING names exactly the rows this statement inserted: a value already there (or inserted by
# another replica's batch that committed first: the unique key makes this one wait for it) is not one.
_INSERT = (
    "INSERT INTO one_time_uses (kind, owner, value, expires_at) "
    "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::float8[]) "
    "ON CONFLICT DO NOTHING RETURNING kind, owner, value"
)
_PURGE = "DELETE FROM one_time_uses WHERE expires_at < $1"
# What a connection the server ended, or lost, raises on its next use.
_CONNECTION_LOST = (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
                    asyncpg.exceptions.InterfaceError, ConnectionError, OSError)


class PgOneTimeWriter:
    """Batches of single-use values on one held asyncpg connection, one batch at a time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()  # asyncpg runs one operation at a time on a connection

    async def insert(self, rows: list[tuple[str, str, str, float]]) -> set[Key]:
        """The values of `rows` this batch inserted (one statement, one round trip)."""
        kinds, owners, values, expires = (list(column) for column in zip(*rows, strict=True))
        found = await self._run(lambda driver: driver.fetch(_INSERT, kinds, owners, values, expires))
        return {(r[0], r[1], r[2]) for r in found}

    async def purge(self, before: float) -> None:
        """Delete the values that expired before `before` (the store runs it between batches)."""
        await self._run(lambda driver: driver.execute(_PURGE, before))

    async def _run(self, statement: Callable[[Any], Awaitable[Any]]) -> Any:
        """`statement(asyncpg connection)` on the held connection, or on a fresh one from the pool (whose
        checkout checks it is alive). A held connection found dead (PostgreSQL restarted or failed over,
        or ended it while idle) is dropped and the statement runs once more on a fresh one: the pool's
        liveness check used to hide that, and a batch must not fail for it. If the statement did reach
        the database before the connection died, the second run finds its values taken and refuses
        them: a false refusal, never a second use."""
        async with self._lock:
            while True:
                held, self._conn = self._conn, None
                conn = held or await self._engine.connect()
                try:
                    result = await statement((await conn.get_raw_connection()).driver_connection)  # asyncpg's
                except BaseException as exc:
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                        await conn.close()
                    if held is not None and isinstance(exc, _CONNECTION_LOST):
                        continue  # a fresh connection next: at most one more run
                    raise
                self._conn = conn
                return result

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
