"""Leak use cases over a real SQLite store (issue 14): lookup by keyed hash, one leak record and one
audit record per (secret, location), revocation at once, and never the secret in what is stored."""

from __future__ import annotations

import json

from sqlalchemy import select

from keyless.crypto.secrets import new_client_secret
from keyless.domain.ports import LogQuery
from keyless.store import tables as t
from keyless.store.outbox_tables import outbox_events
from tests.unit.directory.conftest import Env


def wrong_checksum(secret: str) -> str:
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


async def test_lookup_tells_active_expired_revoked_unknown_and_noise(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "leaky", actor="t")
    live_rec, live = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=3600)
    short_rec, short = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=60)
    dead_rec, dead = await svc.add_secret(env.tenant, app.client_id, actor="t")
    await svc.revoke_secret(env.tenant, app.client_id, dead_rec.id, actor="t")
    env.clock.advance(120)
    stranger = new_client_secret()
    found = await svc.leaks.lookup(env.tenant, [live, short, dead, stranger, wrong_checksum(live), "kls_x"])
    assert [(x.status, x.hint) for x in found] == [
        ("active", live_rec.hint), ("expired", short_rec.hint), ("revoked", dead_rec.hint),
        ("unknown", stranger[4:7]), ("not_a_secret", ""), ("not_a_secret", ""),
    ]
    assert found[0].match is not None and found[0].match.secret_id == live_rec.id
    assert found[0].match.client_id == app.client_id and found[0].match.display_name == "leaky"


async def test_report_revokes_once_and_is_idempotent_per_location(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "leaky", actor="t")
    rec, secret = await svc.add_secret(env.tenant, app.client_id, actor="t")
    changes = env.changes
    outcome = await svc.leaks.report(secret, tenant=env.tenant, location="repo/a.env:3", source="scan",
                                     reporter="admin-app")
    assert outcome is not None
    leak, created = outcome
    assert created and leak.revoked and leak.status_before == "active" and leak.secret_id == rec.id
    assert env.changes == changes + 1  # caches cleared: the token endpoint stops accepting it at once
    assert await svc.list_secrets(env.tenant, app.client_id) == []  # revoked

    again = await svc.leaks.report(secret, tenant=env.tenant, location="repo/a.env:3", source="scan",
                                   reporter="someone-else")
    assert again == (leak, False)
    elsewhere = await svc.leaks.report(secret, tenant=env.tenant, location="https://example.test/x",
                                       source="content", reporter="github:abc")
    assert elsewhere is not None
    assert elsewhere[1] and not elsewhere[0].revoked and elsewhere[0].status_before == "revoked"
    assert env.changes == changes + 1

    audits = [a for a in await svc.audit(LogQuery(tenant_id=env.tenant.id, action="secret.leaked"))]
    assert len(audits) == 2
    assert {a.details["location"] for a in audits} == {"repo/a.env:3", "https://example.test/x"}
    assert {a.actor for a in audits} == {"admin-app", "github:abc"}
    leaks = await svc.leaks.leaks(env.tenant, app.client_id)
    assert sorted(x.location for x in leaks) == ["https://example.test/x", "repo/a.env:3"]
    async with env.store.engine.connect() as conn:
        rows = [json.dumps([str(v) for v in r]) for r in (await conn.execute(select(t.audit_log))).all()]
        events = (await conn.execute(select(outbox_events).where(outbox_events.c.type == "leak.reported"))).all()
    assert all(secret not in r for r in rows)
    # One leak.reported notification per new report (none for the repeat), in the same transaction.
    assert len(events) == 2 and all(e.subject == rec.id and secret not in e.payload for e in events)
    assert {json.loads(e.payload)["data"]["location"] for e in events} == {"repo/a.env:3", "https://example.test/x"}


async def test_report_of_unknown_or_noise_changes_nothing(env: Env) -> None:
    svc = env.service
    assert await svc.leaks.report(new_client_secret(), tenant=env.tenant, location="x:1", source="scan",
                                  reporter="a") is None
    assert await svc.leaks.report(wrong_checksum(new_client_secret()), tenant=None, location="x:1",
                                  source="scan", reporter="a") is None
    assert await svc.audit(LogQuery(tenant_id=env.tenant.id, action="secret.leaked")) == []


async def test_report_without_tenant_finds_the_secret_in_its_tenant(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "leaky", actor="t")
    _, secret = await svc.add_secret(env.tenant, app.client_id, actor="t")
    outcome = await svc.leaks.report(secret, tenant=None, location="https://example.test/y", source="commit",
                                     reporter="github:k1")
    assert outcome is not None and outcome[0].tenant_id == env.tenant.id and outcome[0].revoked
