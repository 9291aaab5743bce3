"""Migration 0017 (each certificate's "issued by the installation's CA" verdict, kept) on SQLite and
PostgreSQL: upgrade adds the two columns with existing rows unchecked, downgrade removes only them
and keeps the rows."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from keyless.store import db
from tests.support.migrations import migrate_to

REVISION = "0017"
PREVIOUS = "0016"


def _columns(connection: Connection) -> set[str]:
    return {str(c["name"]) for c in inspect(connection).get_columns("certificates")}


INSERT = ("INSERT INTO certificates (id, owner_kind, owner_id, x5t, x5t_s256, der, subject, key_type, key_size, "
          "not_before, not_after, created_at, display_name) VALUES ('00000000-0000-0000-0000-000000000001', "
          "'host', '00000000-0000-0000-0000-000000000002', 'a', 'b', :der, 'CN=x', 'EC', 256, 0, 1, 0, '')")


async def test_upgrade_adds_the_verdict_unchecked_and_downgrade_removes_only_it(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate_to(PREVIOUS))
            before = await conn.run_sync(_columns)
            await conn.execute(text(INSERT), {"der": b"\x30\x00"})
            await conn.run_sync(migrate_to(REVISION))
            after = await conn.run_sync(_columns)
            kept = (await conn.execute(text("SELECT ca_issued, ca_checked FROM certificates"))).all()
            await conn.run_sync(migrate_to(PREVIOUS, down=True))
            again = await conn.run_sync(_columns)
            count = (await conn.execute(text("SELECT count(*) FROM certificates"))).scalar_one()
        assert after - before == {"ca_issued", "ca_checked"} and again == before
        assert [tuple(r) for r in kept] == [(None, None)] and count == 1
    finally:
        await engine.dispose()
