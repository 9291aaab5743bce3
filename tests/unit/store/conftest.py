"""A fresh database URL on each engine: SQLite always, PostgreSQL where it runs (required in CI); and a
migrated directory on it (`directory`) that counts the statements it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.crypto.secrets import SecretHasher
from keyless.directory.service import DirectoryService
from keyless.domain.model import Tenant
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
from tests.support.server import postgres_database, require_postgres

START = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield db.sqlite_url(tmp_path / "s.db")
        return
    require_postgres()
    with postgres_database() as pg:
        yield pg


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database alone, for what only PostgreSQL does (its held writer connections)."""
    require_postgres()
    with postgres_database() as pg:
        yield pg


@dataclass
class Directory:
    """The directory service over a real store on one engine, a frozen clock, the tenant `default`,
    and every SQL statement run since the last `statements.clear()` (white space folded)."""

    store: SqlDirectoryStore
    service: DirectoryService
    clock: FrozenClock
    hasher: SecretHasher
    tenant: Tenant
    statements: list[str] = field(default_factory=list)


@pytest.fixture
async def directory(url: str) -> AsyncIterator[Directory]:
    engine = db.create_engine(url)
    await db.migrate(engine)
    clock = FrozenClock(START)
    kek = aead.new_key()
    hasher = SecretHasher(aead.derive(kek, "pepper"))
    store = SqlDirectoryStore(engine)
    service = DirectoryService(store, clock, hasher, kek)
    made = Directory(store, service, clock, hasher, await service.create_tenant("default", actor="test"))

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        made.statements.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield made
    finally:
        await store.release()
        await engine.dispose()
