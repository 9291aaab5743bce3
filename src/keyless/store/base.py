"""What every SQL repository shares: the engine, and writing an audit row in the caller's transaction.

Each aggregate has its own repository module (`tenants`, `applications`, `credentials`,
`assignments`, `signing_keys`, `logs`, `hosts`, `federation`, `vault`) over this base, so a change to
one concept touches one file. Every write is one transaction together with its
audit row: a failed request changes nothing and no change goes unaudited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, Table, Update, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyless import text
from keyless.domain.credentials import CredentialKind, LastUse
from keyless.domain.events import Event
from keyless.domain.model import AuditEvent
from keyless.store import tables as t
from keyless.store.logrows import AUDIT_TEXT_LIMIT, audit_row
from keyless.store.outbox_tables import outbox_events


async def insert_audit(conn: AsyncConnection, event: AuditEvent) -> None:
    """Record `event` inside the transaction of the change it describes (through the sanitising
    row builder, `keyless.store.logrows`), with the notification events it carries (the outbox):
    they commit or roll back together with the change."""
    await conn.execute(insert(t.audit_log).values(**audit_row(event)))
    if event.notify:
        await insert_events(conn, event.notify)


def event_row(event: Event) -> dict[str, Any]:
    """The outbox row of `event`: its payload's texts pass the sanitiser, as audit details do (a
    receiver may show them in a terminal or a chat)."""
    payload = text.stored_tree(event.payload(), AUDIT_TEXT_LIMIT)
    return {"id": event.id, "tenant_id": event.tenant_id, "type": event.type,
            "subject": text.stored(event.subject, 128) or "", "time": event.time,
            "payload": json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str),
            "dedupe": event.dedupe, "dispatched_at": None}


KNOWN_KEYS_CHUNK = 500  # dedupe keys looked up per query (well under every engine's bound parameters)


async def insert_events(conn: AsyncConnection, events: Sequence[Event]) -> int:
    """Write `events` to the outbox in the caller's transaction; an event whose `dedupe` key is
    already there is skipped. Returns how many were new.

    A scheduled scan re-finds every notice it has already sent (that is what the dedupe key is for),
    so the keys already stored are looked up first, a chunk per query, and only the rest inserted:
    on 20,000 workloads a scan re-found ~18,000 notices, one refused insert each. The insert keeps
    ON CONFLICT DO NOTHING (both engines) for a key another replica or an earlier event of this
    batch wrote meanwhile."""
    keys = [event.dedupe for event in events if event.dedupe is not None]
    known: set[str] = set()
    for start in range(0, len(keys), KNOWN_KEYS_CHUNK):
        chunk = keys[start : start + KNOWN_KEYS_CHUNK]
        known.update((await conn.execute(select(outbox_events.c.dedupe)
                                         .where(outbox_events.c.dedupe.in_(chunk)))).scalars())
    written = 0
    insert_for = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for event in events:
        if event.dedupe is not None and event.dedupe in known:
            continue
        statement = insert_for(outbox_events).values(**event_row(event))
        result = await conn.execute(statement.on_conflict_do_nothing(index_elements=["dedupe"])
                                    if event.dedupe is not None else statement)
        written += result.rowcount
    return written


LAST_USE_TABLES: Mapping[CredentialKind, Table] = {
    "secret": t.client_secrets, "certificate": t.certificates, "federated": t.federated_credentials,
}


def last_use_update(table: Table) -> Update:
    """The one last-use statement (issue 13 item 2): `last_used_at` (and `last_used_from` with it) move
    forward only, as batches may arrive out of order. Parameters `use_at`, `use_from`, `use_id`."""
    return (update(table)
            .where(table.c.id == bindparam("use_id"),
                   or_(table.c.last_used_at.is_(None), table.c.last_used_at < bindparam("use_at")))
            .values(last_used_at=bindparam("use_at"), last_used_from=bindparam("use_from")))


def last_use_params(uses: Mapping[str, LastUse]) -> list[dict[str, Any]]:
    """`last_use_update`'s parameters for `uses`; the source address passes the sanitiser (it may come
    from a forwarding header a caller wrote)."""
    return [{"use_id": row_id, "use_at": use.at, "use_from": text.stored(use.source, 64)}
            for row_id, use in uses.items()]


_LAST_USE_SQL: dict[tuple[str, str, str, str], tuple[str, tuple[str, ...]]] = {}


def last_use_sql(dialect: Dialect, table: Table) -> tuple[str, tuple[str, ...]]:
    """`last_use_update(table)` as `dialect`'s SQL text, with its parameters' names in order; compiled
    once: through the driver, a batch's updates skip SQLAlchemy's statement building and parameter
    handling (issue 18: ~1 ms a batch on PostgreSQL for one credential's update)."""
    key = (dialect.name, dialect.driver, dialect.paramstyle, table.name)
    found = _LAST_USE_SQL.get(key)
    if found is None:
        compiled = last_use_update(table).compile(dialect=dialect)
        found = _LAST_USE_SQL[key] = (str(compiled), tuple(compiled.positiontup or ()))
    return found


def last_use_rows(names: Sequence[str], uses: Mapping[str, LastUse]) -> list[tuple[Any, ...]]:
    """`last_use_params` as positional rows, in `names`' order (`last_use_sql`'s)."""
    return [tuple(p[n] for n in names) for p in last_use_params(uses)]


async def mark_used_in(conn: AsyncConnection, table: Table, uses: Mapping[str, LastUse]) -> None:
    """Every last use of `uses` in the caller's transaction, as one executemany."""
    if not uses:
        return
    if conn.dialect.positional:
        sql, names = last_use_sql(conn.dialect, table)
        await conn.exec_driver_sql(sql, last_use_rows(names, uses))
    else:
        await conn.execute(last_use_update(table), last_use_params(uses))


class SqlRepository:
    """Base of the SQL repositories: one engine, shared by every aggregate's repository."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _audit(self, conn: AsyncConnection, event: AuditEvent) -> None:
        await insert_audit(conn, event)

    async def _change_one(self, statement: Executable, audit: AuditEvent) -> bool:
        """Run `statement` (an update or delete meant to hit exactly one row) with `audit` in one
        transaction; when it hits no row (already gone, not this owner's) nothing is written: False."""
        async with self.engine.begin() as conn:
            res = await conn.execute(statement)
            if getattr(res, "rowcount", 0) != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    async def _mark_used(self, table: Table, uses: Mapping[str, LastUse]) -> None:
        if uses:
            async with self.engine.begin() as conn:
                await mark_used_in(conn, table, uses)
