"""Migration 0015 and the policy store (keyless.store.policies) on SQLite and PostgreSQL: the table
appears on a database made by the previous head and goes on downgrade; the tenant default and each
application's override are kept apart, replaced whole, audited in the same transaction, and read back
as the policies they were (docs/policies.md)."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select

from keyless.domain.model import AuditEvent, Tenant
from keyless.domain.policies import BlockSecrets, Policy, SourceNetworks
from keyless.domain.policy_document import policy_from_json
from keyless.store import db
from keyless.store import tables as t
from keyless.store.directory import SqlDirectoryStore

POLICY_REVISION = "0015"


def _to(revision: str, down: bool = False) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        cfg = db.alembic_config()
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
    return run


def _previous() -> str:
    rev = ScriptDirectory.from_config(db.alembic_config()).get_revision(POLICY_REVISION)
    assert rev is not None and isinstance(rev.down_revision, str)
    return rev.down_revision


def _audit(action: str, target: str) -> AuditEvent:
    return AuditEvent(time=1.0, tenant_id="", actor="test", action=action, target_type="tenant", target_id=target)


async def test_migration_adds_and_removes_the_policy_table(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to(_previous()))
            assert "credential_policies" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
            await conn.run_sync(_to(POLICY_REVISION))
            assert "credential_policies" in await conn.run_sync(lambda c: inspect(c).get_table_names())
            await conn.run_sync(_to(_previous(), down=True))
            assert "credential_policies" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()


async def test_tenant_default_and_overrides_are_kept_apart_and_audited(url: str) -> None:
    engine = db.create_engine(url)
    await db.migrate(engine)
    store = SqlDirectoryStore(engine)
    try:
        tenant = Tenant(id="6f1c6c9e-1111-4222-8333-444455556666", name="policies")
        await store.create_tenant(tenant, _audit("tenant.create", tenant.id))
        base = policy_from_json({"block_secrets": {"mode": "enforce", "allowed_apps": ["legacy"]},
                                 "source_networks": {"mode": "audit", "networks": ["10.0.0.0/8", "fd00::/8"]}})
        override = Policy(block_secrets=BlockSecrets("off"))
        assert await store.get_policy(tenant.id, None) is None
        await store.put_policy(tenant.id, None, base, _audit("policy.set", tenant.id))
        await store.put_policy(tenant.id, "app-1", override, _audit("policy.set", "app-1"))
        assert await store.get_policy(tenant.id, None) == base
        assert await store.get_policy(tenant.id, "app-1") == override
        assert await store.policies(tenant.id) == {None: base, "app-1": override}
        assert await store.policies("00000000-0000-0000-0000-000000000000") == {}
        # Replaced whole, not merged.
        narrower = Policy(source_networks=base.source_networks)
        assert isinstance(narrower.source_networks, SourceNetworks)
        await store.put_policy(tenant.id, None, narrower, _audit("policy.set", tenant.id))
        assert await store.get_policy(tenant.id, None) == narrower
        assert await store.delete_policy(tenant.id, "app-1", _audit("policy.clear", "app-1"))
        assert not await store.delete_policy(tenant.id, "app-1", _audit("policy.clear", "app-1"))
        async with engine.connect() as conn:
            actions = [r.action for r in (await conn.execute(
                select(t.audit_log.c.action).where(t.audit_log.c.action.like("policy.%")))).all()]
        assert actions == ["policy.set", "policy.set", "policy.set", "policy.clear"]
    finally:
        await store.release()
        await engine.dispose()


async def test_cached_policies_read_each_tenant_once_until_cleared() -> None:
    """The token path's view (keyless.store.cache.CachedPolicies): no store read per request; a write's
    `invalidate` (this replica) or the change feed (the others) makes the next read fresh."""
    from keyless.clock import FrozenClock
    from keyless.domain.policies import NO_POLICY, InternalCa
    from keyless.store.cache import CachedPolicies

    class Counting:
        def __init__(self) -> None:
            self.reads = 0
            self.stored: dict[str | None, Policy] = {None: Policy(internal_ca=InternalCa("audit"))}

        async def policies(self, tenant_id: str) -> dict[str | None, Policy]:
            self.reads += 1
            return dict(self.stored)

    store = Counting()
    cache = CachedPolicies(store, FrozenClock(1_800_000_000.0), ttl=5)  # type: ignore[arg-type]
    for client in ("a", "b", "a", "a"):
        assert (await cache.policy("t1", client)).internal_ca == InternalCa("audit")
    assert store.reads == 1
    store.stored = {}
    assert (await cache.policy("t1", "a")).internal_ca is not None  # still cached
    cache.invalidate()
    assert await cache.policy("t1", "a") == NO_POLICY and store.reads == 2
