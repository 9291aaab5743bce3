"""The vault store on SQLite and PostgreSQL: concurrent writers get distinct, ordered versions, and
`If-Match` lets exactly one of several racing writers win."""

from __future__ import annotations

import asyncio

from keyless.clock import FrozenClock
from keyless.crypto import aead
from keyless.domain.model import AuditEvent, Tenant
from keyless.ids import new_guid
from keyless.store import db
from keyless.store.directory import SqlDirectoryStore
from keyless.store.vault import SqlVaultStore
from keyless.vault.errors import PreconditionFailed
from keyless.vault.model import Principal, SecretAttributes
from keyless.vault.service import VaultService


async def _service(url: str) -> tuple[VaultService, Principal, object]:
    engine = db.create_engine(url)
    await db.migrate(engine)
    tenant = Tenant(id=new_guid(), name="t")
    await SqlDirectoryStore(engine).create_tenant(tenant, AuditEvent(0, tenant.id, "t", "tenant.create", "tenant",
                                                                     tenant.id))
    service = VaultService(SqlVaultStore(engine), FrozenClock(1_800_000_000), aead.new_key(),
                           audit_sink=lambda e: None, cache_ttl=0)
    owner = Principal(tenant_id=tenant.id, object_id=new_guid(), client_id=new_guid())
    await service.create_vault(tenant.id, "race", actor="t", owner=owner)
    return service, owner, engine


async def test_concurrent_writers_all_land_in_order(url: str) -> None:
    service, owner, engine = await _service(url)
    try:
        vault = await service.find("race")
        written = await asyncio.gather(*(service.set_secret(vault, owner, "hot", f"v{i}", SecretAttributes())
                                         for i in range(12)))
        versions, _ = await service.list_versions(vault, owner, "hot", token=None, limit=25)
        assert sorted(v.version for v in versions) == sorted(w.version for w in written)
        for w, value in zip(written, (f"v{i}" for i in range(12)), strict=True):
            assert (await service.get_secret(vault, owner, "hot", w.version)).value == value
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_if_match_lets_one_racing_writer_win(url: str) -> None:
    service, owner, engine = await _service(url)
    try:
        vault = await service.find("race")
        base = await service.set_secret(vault, owner, "cas", "base", SecretAttributes())
        results = await asyncio.gather(*(service.set_secret(vault, owner, "cas", f"w{i}", SecretAttributes(),
                                                            if_match=base.version) for i in range(6)),
                                       return_exceptions=True)
        wins = [r for r in results if not isinstance(r, BaseException)]
        assert len(wins) == 1
        assert all(isinstance(r, PreconditionFailed) for r in results if isinstance(r, BaseException))
        versions, _ = await service.list_versions(vault, owner, "cas", token=None, limit=25)
        assert len(versions) == 2
    finally:
        await engine.dispose()  # type: ignore[attr-defined]
