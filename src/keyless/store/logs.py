"""The sign-in and audit logs on SQLAlchemy Core (`keyless.domain.ports.LogStore`): sign-ins are
written in batches off the token path (`keyless.server.signin_log`), audit rows with each change.

A batch of sign-ins and the last uses it carries are one transaction. On a SQLite file it runs on the
store's own `SqliteWriter` (one connection, one thread, one hop per batch; issue 18); elsewhere
(PostgreSQL, an in-memory SQLite) on the engine.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.domain.credentials import CredentialKind, LastUse
from keyless.domain.model import AuditEvent, SignInEvent
from keyless.domain.ports import LogQuery
from keyless.store import tables as t
from keyless.store.base import LAST_USE_TABLES, SqlRepository, last_use_rows, last_use_sql, mark_used_in
from keyless.store.logrows import SIGNIN_COLUMNS, insert_values, signin_values
from keyless.store.pg_held import HeldConnection
from keyless.store.sqlite_writer import SqliteWriter, sqlite_file

Uses = Mapping[CredentialKind, Mapping[str, LastUse]]
_SIGNIN_INSERT = (f"INSERT INTO signin_log ({', '.join(SIGNIN_COLUMNS)}) "  # noqa: S608 - our own identifiers
                  f"VALUES ({', '.join(['?'] * len(SIGNIN_COLUMNS))})")


_SQLITE = sqlite_dialect.dialect()


def _write_batch(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], used: Uses) -> None:
    """A batch on the SQLite writer's connection (its transaction is the writer's)."""
    conn.executemany(_SIGNIN_INSERT, rows)
    for kind, uses in used.items():
        sql, names = last_use_sql(_SQLITE, LAST_USE_TABLES[kind])
        conn.executemany(sql, last_use_rows(names, uses))


class _PgSignInWriter:
    """The batches of a PostgreSQL engine (asyncpg) on a held connection (`keyless.store.pg_held`): the
    rows by binary COPY, the last uses as one executemany, in one transaction, through the driver
    itself (the rows' executemany cost more CPU than COPY; issue 18). A batch that runs again after its
    connection died wrote nothing the first time unless its commit reached the database, the same
    case in which the batcher's own retry of a failed batch writes its rows twice."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._held = HeldConnection(engine)
        self._dialect = engine.dialect

    async def write(self, rows: list[tuple[Any, ...]], used: Uses) -> None:
        async def batch(driver: Any) -> None:
            async with driver.transaction():
                if rows:
                    await driver.copy_records_to_table("signin_log", records=rows, columns=SIGNIN_COLUMNS)
                for kind, uses in used.items():
                    sql, names = last_use_sql(self._dialect, LAST_USE_TABLES[kind])
                    await driver.executemany(sql, last_use_rows(names, uses))

        await self._held.run(batch)

    async def close(self) -> None:
        await self._held.close()


def _window(q: Any, col_time: Any, col_seq: Any, query: LogQuery) -> Any:
    if query.since is not None:
        q = q.where(col_time >= query.since)
    if query.until is not None:
        q = q.where(col_time < query.until)
    if query.before_seq is not None:
        q = q.where(col_seq < query.before_seq)
    return q


class SqlLogStore(SqlRepository):
    _signin_writer: SqliteWriter | None = None
    _pg_signin_writer: _PgSignInWriter | None = None

    async def record_signins(self, events: Sequence[SignInEvent]) -> None:
        await self.record_signin_batch(events, {})

    async def record_signin_batch(self, events: Sequence[SignInEvent], used: Uses) -> None:
        """`events` (every text through `keyless.store.logrows`' sanitiser) and the credentials' last
        uses, in one transaction: a failed batch leaves neither, so its retry writes no row twice."""
        if not events and not any(used.values()):
            return
        rows = [signin_values(e) for e in events]
        if self._signin_writer is None and (path := sqlite_file(self.engine)) is not None:
            self._signin_writer = SqliteWriter(path, "signins")
        if self._signin_writer is not None:
            await self._signin_writer.transaction(partial(_write_batch, rows=rows, used=used))
            return
        if self.engine.dialect.driver == "asyncpg":
            self._pg_signin_writer = self._pg_signin_writer or _PgSignInWriter(self.engine)
            await self._pg_signin_writer.write(rows, used)
            return
        async with self.engine.begin() as conn:
            await insert_values(conn, t.signin_log, SIGNIN_COLUMNS, rows)
            for kind, uses in used.items():
                await mark_used_in(conn, LAST_USE_TABLES[kind], uses)

    async def release_signin_writer(self) -> None:
        """Return the connection the PostgreSQL sign-in writer holds to the pool (the batcher's last
        step on close); the SQLite writer's thread and connection end with `close_signin_writer`."""
        if self._pg_signin_writer is not None:
            await self._pg_signin_writer.close()

    def close_signin_writer(self) -> None:
        """Release the SQLite sign-in writer's connection and thread, if a batch made them."""
        if self._signin_writer is not None:
            self._signin_writer.close()

    async def record_audit(self, event: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await self._audit(conn, event)

    async def query_signins(self, query: LogQuery) -> Sequence[SignInEvent]:
        s = t.signin_log
        q = select(s).where(s.c.tenant_id == query.tenant_id)
        if query.client_id:
            q = q.where(s.c.client_id == query.client_id)
        if query.result:
            q = q.where(s.c.result == query.result)
        q = _window(q, s.c.time, s.c.id, query).order_by(s.c.id.desc()).limit(query.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            SignInEvent(
                time=r.time, tenant_id=r.tenant_id, client_id=r.client_id, credential_id=r.credential_id,
                credential_type=r.credential_type, resource=r.resource, result=r.result, error=r.error,
                detail=r.detail, source=r.source, token_id=r.token_id, grant_type=r.grant_type,
                auth_method=r.auth_method, seq=r.id,
            )
            for r in rows
        ]

    async def query_audit(self, query: LogQuery) -> Sequence[AuditEvent]:
        a = t.audit_log
        q = select(a).where(a.c.tenant_id == query.tenant_id)
        if query.client_id:
            q = q.where(or_(a.c.actor == query.client_id, a.c.target_id == query.client_id))
        if query.action:
            q = q.where(a.c.action == query.action)
        q = _window(q, a.c.time, a.c.id, query).order_by(a.c.id.desc()).limit(query.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            AuditEvent(
                time=r.time, tenant_id=r.tenant_id, actor=r.actor, action=r.action, target_type=r.target_type,
                target_id=r.target_id, details=json.loads(r.details), seq=r.id,
            )
            for r in rows
        ]
