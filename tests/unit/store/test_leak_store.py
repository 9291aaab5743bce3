"""Migration 0012 (leak records, keyed-hash index) and the leak store on SQLite and PostgreSQL: a
database made by the previous head keeps its secrets and can record leaks after the upgrade; the
downgrade removes only what 0012 added; two replicas recording the same report at once leave one
record, one revocation and one audit row (idempotent per token, catalog O07)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.crypto.secrets import SecretHasher
from keyless.directory.service import DirectoryService
from keyless.domain.ports import LogQuery
from keyless.store import db
from keyless.store import tables as t
from keyless.store.directory import SqlDirectoryStore
from keyless.store.leak_tables import leaks

LEAKS_REVISION = "0012"
START = 1_800_000_000.0


def _previous_head() -> str:
    revision = ScriptDirectory.from_config(db.alembic_config()).get_revision(LEAKS_REVISION)
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _to(revision: str, *, down: bool = False) -> Any:
    def run(connection: Connection) -> None:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
    return run


def _tables_and_indexes(connection: Connection) -> tuple[set[str], set[str]]:
    insp = inspect(connection)
    return set(insp.get_table_names()), {i["name"] for i in insp.get_indexes("client_secrets")}


@pytest.fixture
async def engine(url: str) -> AsyncIterator[Any]:
    eng = db.create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


def _service(engine: Any) -> tuple[DirectoryService, SqlDirectoryStore]:
    kek = bytes(range(32))
    store = SqlDirectoryStore(engine)
    return DirectoryService(store, FrozenClock(START), SecretHasher(aead.derive(kek, "pepper")), kek), store


async def test_upgrade_from_previous_head_keeps_secrets_and_records_leaks(engine: Any) -> None:
    # The rows are written by this build and then taken down to the previous head (which keeps them),
    # since this build's code may read columns that later migrations added.
    await db.migrate(engine)
    service, store = _service(engine)
    tenant = await service.create_tenant("default", actor="t")
    app = await service.create_application(tenant, "old-app", actor="t")
    record, secret = await service.add_secret(tenant, app.client_id, actor="t")
    async with engine.begin() as conn:
        await conn.run_sync(_to(_previous_head(), down=True))
        tables, indexes = await conn.run_sync(_tables_and_indexes)
    assert "leaks" not in tables and "ix_client_secrets_digest" not in indexes

    await db.migrate(engine)
    await db.require_head(engine)
    async with engine.connect() as conn:
        tables, indexes = await conn.run_sync(_tables_and_indexes)
    assert "leaks" in tables and "ix_client_secrets_digest" in indexes
    outcome = await service.leaks.report(secret, tenant=tenant, location="a:1", source="scan", reporter="t")
    assert outcome is not None and outcome[0].secret_id == record.id and outcome[0].revoked

    async with engine.begin() as conn:
        await conn.run_sync(_to(_previous_head(), down=True))
        tables, indexes = await conn.run_sync(_tables_and_indexes)
    assert "leaks" not in tables and "ix_client_secrets_digest" not in indexes
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.client_secrets))).scalar_one() == 1
    await store.release()


async def test_the_same_report_from_two_replicas_at_once_is_recorded_once(engine: Any) -> None:
    await db.migrate(engine)
    service, store = _service(engine)
    other, other_store = _service(engine)  # a second replica: its own service over the same database
    tenant = await service.create_tenant("default", actor="t")
    app = await service.create_application(tenant, "leaky", actor="t")
    _, secret = await service.add_secret(tenant, app.client_id, actor="t")

    async def report(svc: DirectoryService) -> Any:
        return await svc.leaks.report(secret, tenant=None, location="https://example.test/r", source="content",
                                      reporter="github:k")

    results = await asyncio.gather(*(report(s) for s in (service, other, service, other)))
    assert all(r is not None for r in results)
    assert sum(1 for r in results if r[1]) == 1
    assert len({r[0].id for r in results}) == 1
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(leaks))).scalar_one() == 1
    assert len(await service.audit(LogQuery(tenant_id=tenant.id, action="secret.leaked"))) == 1
    await store.release()
    await other_store.release()
