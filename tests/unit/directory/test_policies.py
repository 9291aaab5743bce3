"""Credential policies at write (keyless.directory.policies over a real SQLite store): an enforced
rule refuses and changes nothing; an audit-mode rule lets the write through, names the rules in its
audit record and writes one `policy.violation` event to the outbox in the same transaction; the dry
run puts the candidate at its level and keeps the other stored policies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from keyless.directory.errors import Invalid
from keyless.directory.policies import OwnedCredential, PolicyRefused
from keyless.directory.service import DirectoryService
from keyless.domain.events import POLICY_VIOLATION
from keyless.domain.model import SignInEvent
from keyless.domain.policies import BlockSecrets, CredentialFacts, MaxLifetime, Policy
from keyless.store import tables as t
from keyless.store.outbox_tables import outbox_events
from tests.unit.directory.conftest import Env

DAY = 86400


@pytest.fixture
def service(env: Env) -> DirectoryService:
    def changed() -> None:
        env.changes += 1

    return DirectoryService(env.store, env.clock, env.hasher, env.kek, changed, policy_store=env.store)


async def _outbox(env: Env) -> list[dict[str, object]]:
    async with env.store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_events).where(outbox_events.c.type == POLICY_VIOLATION))).all()
    return [json.loads(r.payload) for r in rows]


async def test_enforced_rule_refuses_and_writes_nothing(env: Env, service: DirectoryService) -> None:
    app = await service.create_application(env.tenant, "worker", actor="test")
    await service.policies.set_policy(env.tenant, app.client_id, {"block_secrets": {"mode": "enforce"}},
                                      actor="test")
    with pytest.raises(PolicyRefused) as refused:
        await service.add_secret(env.tenant, app.client_id, actor="test")
    assert (refused.value.code, refused.value.status) == ("policy_secret_blocked", 400)
    assert await service.list_secrets(env.tenant, app.client_id) == []
    assert await _outbox(env) == []


async def test_audit_rule_allows_and_notifies_in_the_same_transaction(env: Env, service: DirectoryService) -> None:
    app = await service.create_application(env.tenant, "worker", actor="test")
    await service.policies.set_policy(env.tenant, None, {"max_lifetime": {"mode": "audit", "secret": DAY}},
                                      actor="test")
    record, _ = await service.add_secret(env.tenant, app.client_id, actor="test", expires_in=7 * DAY)
    async with env.store.engine.connect() as conn:
        details = [r.details for r in (await conn.execute(
            select(t.audit_log).where(t.audit_log.c.action == "secret.add"))).all()]
    assert len(details) == 1 and "policy_lifetime_exceeded" in str(details[0])
    [payload] = await _outbox(env)
    assert payload["type"] == POLICY_VIOLATION
    data = payload["data"]
    assert isinstance(data, dict)
    assert (data["during"], data["credential_id"], data["reasons"]) == ("write", record.id,
                                                                        ["policy_lifetime_exceeded"])


async def test_policy_writes_are_audited_and_clear_caches(env: Env, service: DirectoryService) -> None:
    before = env.changes
    await service.policies.set_policy(env.tenant, None, {"internal_ca": {"mode": "audit"}}, actor="test")
    assert await service.policies.stored(env.tenant, None) is not None
    assert env.changes == before + 1  # the token path's policy cache is cleared at once
    assert await service.policies.clear_policy(env.tenant, None, actor="test")
    assert not await service.policies.clear_policy(env.tenant, None, actor="test")
    assert env.changes == before + 2
    async with env.store.engine.connect() as conn:
        actions = [r.action for r in (await conn.execute(
            select(t.audit_log.c.action).where(t.audit_log.c.action.like("policy.%")))).all()]
    assert actions == ["policy.set", "policy.clear"]
    with pytest.raises(Invalid) as bad:
        await service.policies.set_policy(env.tenant, None, {"internal_ca": {"mode": "on"}}, actor="test")
    assert bad.value.code == "invalid_policy" and env.changes == before + 2


def test_dry_run_puts_the_candidate_at_its_level(env: Env, service: DirectoryService) -> None:
    stored = {None: Policy(block_secrets=BlockSecrets("enforce")),
              "legacy": Policy(max_lifetime=MaxLifetime("off"))}
    creds = [OwnedCredential("legacy", CredentialFacts("secret", "s-legacy", lifetime=400 * DAY)),
             OwnedCredential("new", CredentialFacts("secret", "s-new", lifetime=400 * DAY))]
    signin = SignInEvent(time=1.0, tenant_id=env.tenant.id, client_id="new", credential_id="s-new",
                         credential_type="secret", resource=None, result="success", error=None, detail=None,
                         source="10.0.0.1")
    candidate = Policy(max_lifetime=MaxLifetime("enforce", secret=90 * DAY))
    found, signs = service.policies.test(candidate, None, stored, creds, [signin], env.tenant)
    # The candidate replaces the tenant default; the legacy override still exempts its application.
    assert [(f.owner, f.violation.reason, f.violation.enforced) for f in found] == [
        ("new", "policy_lifetime_exceeded", True)]
    assert [(f.owner, f.violation.reason, f.source) for f in signs] == [
        ("new", "policy_lifetime_exceeded", "10.0.0.1")]


async def test_enforced_audience_mode_refuses_moving_the_tenant_away(env: Env, service: DirectoryService) -> None:
    tenant = await service.update_tenant(env.tenant, actor="test", assertion_audience="strict")
    await service.policies.set_policy(tenant, None, {"audience_mode": {"mode": "enforce", "required": "strict"}},
                                      actor="test")
    with pytest.raises(PolicyRefused) as refused:
        await service.update_tenant(tenant, actor="test", assertion_audience="entra")
    assert refused.value.code == "policy_audience_mode"
    assert (await service.tenant(tenant.id)).assertion_audience == "strict"
    await service.update_tenant(tenant, actor="test", token_lifetime=1800)  # other settings still change
    await service.policies.set_policy(tenant, None, {"audience_mode": {"mode": "audit", "required": "strict"}},
                                      actor="test")
    assert (await service.update_tenant(tenant, actor="test", assertion_audience="entra")).assertion_audience == "entra"
