"""A real SQLite store in a temporary file behind the directory service, with a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.crypto.secrets import SecretHasher
from keyless.directory.service import DirectoryService
from keyless.domain.model import Tenant
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore

START = 1_800_000_000.0


class Env:
    def __init__(self, store: SqlDirectoryStore, service: DirectoryService, clock: FrozenClock,
                 hasher: SecretHasher, kek: bytes) -> None:
        self.store, self.service, self.clock, self.hasher, self.kek = store, service, clock, hasher, kek
        self.changes = 0
        self.tenant: Tenant


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    engine = db.create_engine(db.sqlite_url(tmp_path / "t.db"))
    await db.migrate(engine)
    clock = FrozenClock(START)
    kek = aead.new_key()
    hasher = SecretHasher(aead.derive(kek, "pepper"))
    store = SqlDirectoryStore(engine)
    holder: list[Env] = []

    def changed() -> None:
        holder[0].changes += 1

    service = DirectoryService(store, clock, hasher, kek, on_change=changed)
    e = Env(store, service, clock, hasher, kek)
    holder.append(e)
    e.tenant = await service.create_tenant("default", actor="test")
    try:
        yield e
    finally:
        await engine.dispose()
