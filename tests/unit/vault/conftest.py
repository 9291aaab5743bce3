"""The vault service over a real SQLite store in a temporary file, with a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.domain.model import AuditEvent, Tenant
from keyless.ids import new_guid
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
from keyless.store.vault import SqlVaultStore
from keyless.vault.model import Principal, Vault
from keyless.vault.service import VaultService

START = 1_800_000_000.0


@dataclass
class Env:
    service: VaultService
    store: SqlVaultStore
    clock: FrozenClock
    kek: bytes
    tenant: Tenant
    vault: Vault
    owner: Principal
    audit: list[AuditEvent] = field(default_factory=list)

    def principal(self) -> Principal:
        return Principal(tenant_id=self.tenant.id, object_id=new_guid(), client_id=new_guid())


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    engine = db.create_engine(db.sqlite_url(tmp_path / "v.db"))
    await db.migrate(engine)
    clock = FrozenClock(START)
    kek = aead.new_key()
    tenant = Tenant(id=new_guid(), name="t", created_at=START)
    await SqlDirectoryStore(engine).create_tenant(tenant, AuditEvent(START, tenant.id, "test", "tenant.create",
                                                                     "tenant", tenant.id))
    store = SqlVaultStore(engine)
    audit: list[AuditEvent] = []
    service = VaultService(store, clock, kek, audit_sink=audit.append, cache_ttl=0)
    owner = Principal(tenant_id=tenant.id, object_id=new_guid(), client_id=new_guid())
    vault = await service.create_vault(tenant.id, "payments", actor="test", owner=owner)
    try:
        yield Env(service, store, clock, kek, tenant, vault, owner, audit)
    finally:
        await engine.dispose()
