"""The one write path of the sign-in and audit logs: rows as stored, every text through the sanitiser.

An unauthenticated caller chooses much of a sign-in row (its claimed client id, grant type, the
parameter names behind a refusal) and an admin's own input ends up in audit rows; both are shown later
in operators' terminals (`keyless log`). So every text passes `keyless.text.stored` here, whoever built
the event (docs/security.md, "Hostile text").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from keyless import text
from keyless.domain.model import AuditEvent, SignInEvent

AUDIT_TEXT_LIMIT = 1024
_PLACEHOLDERS = {  # DB-API paramstyle -> the VALUES list for n positional parameters
    "qmark": lambda n: ", ".join(["?"] * n),  # sqlite3 / aiosqlite
    "numeric_dollar": lambda n: ", ".join(f"${i}" for i in range(1, n + 1)),  # asyncpg
    "format": lambda n: ", ".join(["%s"] * n),  # psycopg
}
# One encoder for every row: `json.dumps` with options builds a new JSONEncoder per call, which was
# most of an audit row's cost (about 4 µs of the vault read's, docs/benchmarks.md); same output.
_DETAILS = json.JSONEncoder(sort_keys=True, default=str)
# The texts of a sign-in row made safe, remembered by their raw values: a busy client's rows differ only
# in time and token id, and `text.stored` on ten fields was ~3.6 us of each row (issue 18). Cleared
# when full, so a caller sending ever new values costs memory for at most this many rows.
_SANITISED: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
SANITISED_MAX = 4096
_AUDITS: dict[tuple[Any, ...], tuple[str, str, str, str, str]] = {}  # audit texts made safe, by raw values


def audit_row(event: AuditEvent) -> dict[str, Any]:
    """The one write path of the audit log: every text passes the sanitiser (keyless.text), so no row
    can carry a terminal escape or forge a line, whoever built the event; the acting credential, when
    the actor names one, joins the details here, so every builder of an event records it.

    The texts and the encoded details are remembered by their raw values (`_AUDITS`, as `_SANITISED`
    for sign-in rows): a vault read's row repeats the same reader, secret and version, and sanitising
    and encoding them was most of the row's cost (issue 18). The key holds each detail's type with its
    value (`1`, `1.0` and `True` are equal keys but encode differently); a row whose details are not
    hashable (a list, a nested object) is sanitised afresh."""
    details = {**event.details, **event.actor_credential()}
    key = (event.actor, event.action, event.target_type, event.target_id,
           *((k, type(v), v) for k, v in details.items()))
    try:
        safe = _AUDITS.get(key)
        hashable = True
    except TypeError:
        safe, hashable = None, False
    if safe is None:
        safe = (text.stored(event.actor, 64) or "", text.stored(event.action, 64) or "",
                text.stored(event.target_type, 32) or "", text.stored(event.target_id, 128) or "",
                _DETAILS.encode(text.stored_tree(details, AUDIT_TEXT_LIMIT)))
        if hashable:
            if len(_AUDITS) >= SANITISED_MAX:
                _AUDITS.clear()
            _AUDITS[key] = safe
    actor, action, target_type, target_id, encoded = safe
    return {"time": event.time, "tenant_id": event.tenant_id, "actor": actor, "action": action,
            "target_type": target_type, "target_id": target_id, "details": encoded}


SIGNIN_COLUMNS = ("time", "tenant_id", "client_id", "credential_id", "credential_type", "resource", "result",
                  "error", "detail", "source", "token_id", "grant_type", "auth_method")


def _sanitise(raw: tuple[str | None, ...]) -> tuple[str | None, ...]:
    client_id, credential_id, credential_type, resource, result, error, detail, source, grant_type, auth_method = raw
    return (text.stored(client_id, 64), text.stored(credential_id, 64), text.stored(credential_type, 16),
            text.stored(resource, 512), result, text.stored(error, 64), text.stored(detail, 256),
            text.stored(source, 64), text.stored(grant_type, 64), text.stored(auth_method, 32))


def signin_values(e: SignInEvent) -> tuple[Any, ...]:
    """The one write path of the sign-in log: every text an unauthenticated caller may have chosen (the
    claimed client id, the grant type, the reason, even the source) passes the sanitiser, capped at its
    column's width; values in `SIGNIN_COLUMNS` order. The token id (ours) passes it per row, the other
    texts once per distinct combination (`_SANITISED`: the same function of the same strings)."""
    raw = (e.client_id, e.credential_id, e.credential_type, e.resource, e.result, e.error, e.detail, e.source,
           e.grant_type, e.auth_method)
    safe = _SANITISED.get(raw)
    if safe is None:
        safe = _sanitise(raw)
        if len(_SANITISED) >= SANITISED_MAX:
            _SANITISED.clear()
        _SANITISED[raw] = safe
    client_id, credential_id, credential_type, resource, result, error, detail, source, grant_type, auth_method = safe
    return (e.time, e.tenant_id, client_id, credential_id, credential_type, resource, result, error, detail, source,
            text.stored(e.token_id, 64), grant_type, auth_method)


def signin_row(e: SignInEvent) -> dict[str, Any]:
    """`signin_values` by column name."""
    return dict(zip(SIGNIN_COLUMNS, signin_values(e), strict=True))


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """A batch of log rows (`audit_row`s: every row the same columns, in the same order) through
    `insert_values`."""
    if rows:
        await insert_values(conn, table, list(rows[0]), [tuple(row.values()) for row in rows])


async def insert_values(conn: AsyncConnection, table: Table, columns: Sequence[str],
                        rows: Sequence[tuple[Any, ...]]) -> None:
    """A batch of log rows, values in `columns` order, through the driver's own executemany over tuples:
    SQLAlchemy Core's per-row parameter handling was a third of each row's CPU (issue 18; a sign-in row
    ~13.5 -> ~8.6 us on SQLite). SQLAlchemy Core where the driver's parameter style is not one of ours."""
    if not rows:
        return
    placeholders = _PLACEHOLDERS.get(conn.dialect.paramstyle)
    if placeholders is None:
        await conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders(len(columns))})"  # noqa: S608 - our own identifiers; every value is a bound parameter
    await conn.exec_driver_sql(sql, list(rows))
