"""Migration 0011 (the event outbox and webhooks) on a database made by the revision before it, on
SQLite and PostgreSQL: it adds its four tables, and downgrading removes them and nothing else."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from keyless.store import db

OUTBOX_REVISION = "0011"
TABLES = {"outbox_events", "webhook_endpoints", "webhook_deliveries", "webhook_attempts"}


def _previous() -> str:
    revision = ScriptDirectory.from_config(db.alembic_config()).get_revision(OUTBOX_REVISION)
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _run(step: Any, revision: str) -> Any:
    def run(connection: Connection) -> set[str]:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = connection
        step(cfg, revision)
        return set(inspect(connection).get_table_names())
    return run


async def test_upgrade_adds_the_outbox_tables_and_downgrade_removes_only_them(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            before = await conn.run_sync(_run(command.upgrade, _previous()))
        async with engine.begin() as conn:
            after = await conn.run_sync(_run(command.upgrade, OUTBOX_REVISION))
        assert after - before == TABLES
        async with engine.begin() as conn:
            back = await conn.run_sync(_run(command.downgrade, _previous()))
        assert back == before
        await db.migrate(engine)
        await db.require_head(engine)
    finally:
        await engine.dispose()
