"""Reaping (keyless.directory.reaping) against a real SQLite store: a warning at N-7 days, the
credential disabled at N days unless it was used meanwhile (even between the scan and the write),
deleted M days after; every action one audit record with its event in the outbox."""

from __future__ import annotations

import json

from sqlalchemy import select

from keyless.directory.notices import DAY
from keyless.directory.reaping import REAPER, Reaper, ReapRules, plan
from keyless.domain.credentials import Credential, LastUse, Owner
from keyless.domain.ports import LogQuery
from keyless.store.outbox_tables import outbox_events
from tests.unit.directory.conftest import START, Env

RULES = ReapRules(unused_days=10, delete_after_days=5)


def _cred(owner_kind: str, kind: str = "secret") -> Credential:
    return Credential(id="x", kind=kind, owner=Owner(owner_kind, "o"), display_name="", created_at=START)  # type: ignore[arg-type]


def test_only_applications_and_identities_secrets_and_certificates_are_reaped() -> None:
    now = START + 11 * DAY
    reapable = [_cred("application"), _cred("identity", "certificate")]
    spared = [_cred("host", "certificate"), _cred("identity", "federated")]
    assert plan(reapable + spared, now, RULES) == ([], reapable)
    assert plan(reapable, now, ReapRules()) == ([], [])  # off by default


async def _events(env: Env) -> list[tuple[str, str]]:
    async with env.store.engine.connect() as conn:
        rows = await conn.execute(select(outbox_events.c.type, outbox_events.c.payload))
        return [(r.type, json.loads(r.payload)["subject"]) for r in rows]


async def test_warn_then_disable_then_delete_each_audited(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    idle, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    busy, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    reaper = Reaper(env.service.credentials, env.clock)

    env.clock.advance(4 * DAY)  # idle for 4 of 10 days: warned (10 - 7 = 3)
    await env.store.mark_used("secret", {busy.id: LastUse(env.clock.now(), "10.0.0.1")})
    warnings, disabled, deleted = await reaper.run(env.tenant.id, await env.store.credentials(env.tenant.id),
                                                   RULES, {})
    assert [(w.type, w.subject, w.data["disable_at"]) for w in warnings] == [
        ("credential.unused", idle.id, START + 10 * DAY)]
    assert (disabled, deleted) == (0, 0)

    env.clock.advance(6 * DAY)  # day 10: the idle one goes, the used one stays
    warnings, disabled, _ = await reaper.run(env.tenant.id, await env.store.credentials(env.tenant.id), RULES, {})
    assert disabled == 1
    assert [c.id for c in await env.store.credentials(env.tenant.id)] == [busy.id]
    [audit] = await env.store.query_audit(LogQuery(env.tenant.id, action="credential.disable"))
    assert (audit.actor, audit.target_id, audit.details["reason"]) == (REAPER, idle.id, "unused")
    assert ("credential.disabled", idle.id) in await _events(env)

    env.clock.advance(5 * DAY + 1)  # disabled 5 days ago: deleted, with its own audit record and event
    await env.store.mark_used("secret", {busy.id: LastUse(env.clock.now(), "10.0.0.1")})
    _, _, deleted = await reaper.run(env.tenant.id, await env.store.credentials(env.tenant.id), RULES, {})
    assert deleted == 1
    [audit] = await env.store.query_audit(LogQuery(env.tenant.id, action="credential.delete"))
    assert (audit.actor, audit.target_id) == (REAPER, idle.id)
    assert ("credential.deleted", idle.id) in await _events(env)
    assert [s.id for s in await env.store.list_secrets(env.tenant.id, app.client_id)] == [busy.id]


async def test_a_credential_used_after_the_scan_is_not_disabled(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    secret, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    env.clock.advance(11 * DAY)
    scanned = await env.store.credentials(env.tenant.id)  # idle when scanned ...
    await env.store.mark_used("secret", {secret.id: LastUse(env.clock.now(), "10.0.0.1")})  # ... used just after
    _, disabled, _ = await Reaper(env.service.credentials, env.clock).run(env.tenant.id, scanned, RULES, {})
    assert disabled == 0
    assert [c.id for c in await env.store.credentials(env.tenant.id)] == [secret.id]
    assert await env.store.query_audit(LogQuery(env.tenant.id, action="credential.disable")) == []
