"""Single-use values on PostgreSQL (asyncpg): one statement a batch, on a held connection.

The rule is `keyless.store.one_time`'s: the unique key of `one_time_uses` decides, on every replica
alike. Through SQLAlchemy a batch cost a pool checkout with its liveness check, `BEGIN`, the insert
and `COMMIT`: about six round trips, while the requests of the batch and of the next one waited; a
private_key_jwt token on PostgreSQL came out at 40 % of SQLite's rate (issue 18, docs/benchmarks.md,
"Session 10"). Here the batch is one prepared statement run in autocommit (PostgreSQL makes a lone
statement its own transaction), its rows passed as four arrays so that every batch size is the same
statement: one round trip, on a connection held between batches (`keyless.store.pg_held`). A batch
that runs again after its connection died finds the values its first run inserted taken and refuses
them: a false refusal, never a second use.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.store.pg_held import HeldConnection

Key = tuple[str, str, str]

# RETURNING names exactly the rows this statement inserted: a value already there (or inserted by
# another replica's batch that committed first: the unique key makes this one wait for it) is not one.
_INSERT = (
    "INSERT INTO one_time_uses (kind, owner, value, expires_at) "
    "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::float8[]) "
    "ON CONFLICT DO NOTHING RETURNING kind, owner, value"
)
_PURGE = "DELETE FROM one_time_uses WHERE expires_at < $1"


class PgOneTimeWriter:
    """Batches of single-use values on one held asyncpg connection, one batch at a time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._held = HeldConnection(engine)

    async def insert(self, rows: list[tuple[str, str, str, float]]) -> set[Key]:
        """The values of `rows` this batch inserted (one statement, one round trip)."""
        kinds, owners, values, expires = (list(column) for column in zip(*rows, strict=True))
        found = await self._held.run(lambda driver: driver.fetch(_INSERT, kinds, owners, values, expires))
        return {(r[0], r[1], r[2]) for r in found}

    async def purge(self, before: float) -> None:
        """Delete the values that expired before `before` (the store runs it between batches)."""
        await self._held.run(lambda driver: driver.execute(_PURGE, before))

    async def close(self) -> None:
        await self._held.close()
