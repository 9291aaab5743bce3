"""Migration 0016 (applications by tenant and client id, for the posture report's pages) on SQLite
and PostgreSQL: upgrade adds the index, the page query uses it instead of sorting (SQLite's plan),
and downgrade removes only it."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from keyless.store import db
from tests.support.migrations import migrate_to

REVISION = "0016"
PREVIOUS = "0015"


def _indexes(connection: Connection) -> set[str]:
    return {str(i["name"]) for i in inspect(connection).get_indexes("applications")}


async def test_upgrade_adds_the_index_and_downgrade_removes_only_it(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate_to(REVISION))
            after = await conn.run_sync(_indexes)
            await conn.run_sync(migrate_to(PREVIOUS, down=True))
            before = await conn.run_sync(_indexes)
        assert after - before == {"ix_applications_tenant_client"}
        assert "ix_applications_tenant" in before
    finally:
        await engine.dispose()


async def test_a_posture_page_is_a_range_scan_not_a_sort(url: str) -> None:
    if not url.startswith("sqlite"):
        return  # PostgreSQL's plan depends on its statistics; the index's presence is tested above
    engine = db.create_engine(url)
    try:
        await db.migrate(engine)
        async with engine.connect() as conn:
            plan = [str(r[-1]) for r in await conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT client_id FROM applications WHERE tenant_id = 't' AND client_id > 'a' "
                "ORDER BY client_id LIMIT 1001"))]
        assert any("ix_applications_tenant_client" in p for p in plan) and not any("TEMP B-TREE" in p for p in plan)
    finally:
        await engine.dispose()
