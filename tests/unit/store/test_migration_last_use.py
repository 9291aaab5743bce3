"""Migration 0014 (last use of every credential kind, with its source address) on SQLite and
PostgreSQL: it adds its columns to existing rows (null: not used since) and downgrades cleanly."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import Connection, inspect

from keyless.store import db

REVISION, PREVIOUS = "0014", "0013"
ADDED = {"client_secrets": {"last_used_from"}, "certificates": {"last_used_from"},
         "federated_credentials": {"last_used_at", "last_used_from"}}


def _run(step: Any, revision: str) -> Any:
    def run(connection: Connection) -> dict[str, set[str]]:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = connection
        step(cfg, revision)
        found = inspect(connection)
        return {table: {c["name"] for c in found.get_columns(table)} for table in ADDED}
    return run


async def test_the_columns_come_and_go(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            before = await conn.run_sync(_run(command.upgrade, PREVIOUS))
        async with engine.begin() as conn:
            after = await conn.run_sync(_run(command.upgrade, REVISION))
        assert {table: after[table] - before[table] for table in ADDED} == ADDED
        async with engine.begin() as conn:
            assert await conn.run_sync(_run(command.downgrade, PREVIOUS)) == before
        await db.migrate(engine)
    finally:
        await engine.dispose()
