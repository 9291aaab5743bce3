"""Reaping (keyless.directory.reaping), the credential policy's `reaping` rule, against a real SQLite
store with a frozen clock: a warning at N-7 days, the credential disabled at N days under `enforce`
(unless it was used meanwhile, even between the scan and the write) and deleted M days after its
revocation, every action one audit record with its event in the outbox; under `audit` nothing is
touched and each would-be action is one `policy.violation` notice; an override replaces or exempts;
the installation's deprecated settings stand in only where no policy sets the rule."""

from __future__ import annotations

import json

from sqlalchemy import select

from keyless.directory.notices import DAY
from keyless.directory.reaping import (
    REAPER,
    WOULD_DELETE,
    WOULD_DISABLE,
    Reaper,
    findings,
    installation_rule,
    plan,
    rule_for,
    shortest_deletion,
)
from keyless.domain.credentials import Credential, LastUse, Owner
from keyless.domain.policies import Policy, Reaping
from keyless.domain.ports import LogQuery
from keyless.store.base import insert_events
from keyless.store.outbox_tables import outbox_events
from tests.unit.directory.conftest import START, Env

ENFORCE = {None: Policy(reaping=Reaping("enforce", unused_days=10, delete_after_days=5))}
AUDIT = {None: Policy(reaping=Reaping("audit", unused_days=10, delete_after_days=5))}


def _cred(owner_kind: str, kind: str = "secret", owner: str = "o") -> Credential:
    return Credential(id=f"{owner}-{kind}", kind=kind, owner=Owner(owner_kind, owner),  # type: ignore[arg-type]
                      display_name="", created_at=START)


def test_only_applications_and_identities_secrets_and_certificates_are_reaped() -> None:
    now = START + 11 * DAY
    reapable = [_cred("application"), _cred("identity", "certificate")]
    spared = [_cred("host", "certificate"), _cred("identity", "federated")]
    found = plan(reapable + spared, [], now, rule_for(ENFORCE))
    assert ([c for c, _ in found.disable], found.warn, found.delete) == (reapable, [], [])
    assert plan(reapable, [], now, rule_for({})).disable == []  # no rule anywhere: nothing is reaped


def test_an_override_replaces_or_exempts_and_the_installation_default_fills_in_only_where_no_rule_is_set() -> None:
    policies = {None: Policy(reaping=Reaping("enforce", unused_days=30)),
                "legacy": Policy(reaping=Reaping("off")), "strict": Policy(reaping=Reaping("audit", 10))}
    default = installation_rule(5, 0)
    assert default == Reaping("enforce", 5, None) and installation_rule(0, 0) is None
    rule = rule_for(policies, default)
    assert (rule("legacy"), rule("strict"), rule("other")) == (None, Reaping("audit", 10), Reaping("enforce", 30))
    assert rule_for({}, default)("any") == default  # no policy sets reaping: the deprecated settings apply
    now = START + 12 * DAY
    creds = [_cred("application", owner=o) for o in ("legacy", "strict", "other")]
    found = plan(creds, [], now, rule)
    assert [(c.owner.id, r.mode) for c, r in found.disable] == [("strict", "audit")]
    assert [c.owner.id for c, _ in found.warn] == []  # "other": 12 days idle of 30, not yet at 23
    assert [c.owner.id for c, _ in plan(creds, [], START + 24 * DAY, rule).warn] == ["other"]


def test_deletion_follows_each_owners_rule() -> None:
    policies = {None: Policy(reaping=Reaping("enforce", delete_after_days=30)),
                "quick": Policy(reaping=Reaping("enforce", delete_after_days=2))}
    assert shortest_deletion(policies) == 2 and shortest_deletion({}) is None
    revoked = [("secret", "s1", "quick", START), ("secret", "s2", "slow", START)]
    found = plan([], revoked, START + 3 * DAY, rule_for(policies))  # type: ignore[arg-type]
    assert [g[1] for g, _ in found.delete] == ["s1"]
    [finding] = findings(found, START + 3 * DAY)
    assert (finding.owner, finding.violation.reason, finding.violation.enforced) == ("quick", WOULD_DELETE, True)
    assert "would be deleted" in finding.violation.message


async def _events(env: Env) -> list[tuple[str, str, dict[str, object]]]:
    async with env.store.engine.connect() as conn:
        rows = await conn.execute(select(outbox_events.c.type, outbox_events.c.payload))
        return [(r.type, json.loads(r.payload)["subject"], json.loads(r.payload)["data"]) for r in rows]


async def _run(env: Env, reaper: Reaper, policies: dict[str | None, Policy]) -> tuple[int, int, list[str]]:
    """One scan's reaping: (disabled, deleted, types of the new notices), the notices emitted as the scan does."""
    now = env.clock.now()
    oldest = shortest_deletion(policies)
    revoked = await env.store.revoked_before(env.tenant.id, now - oldest * DAY) if oldest else []
    done = await reaper.run(env.tenant.id, plan(await env.store.credentials(env.tenant.id), revoked, now,
                                                rule_for(policies)), {})
    async with env.store.engine.begin() as conn:
        await insert_events(conn, done.notices)
    return done.disabled, done.deleted, [e.type for e in done.notices]


async def test_enforce_warns_then_disables_then_deletes_each_audited(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    idle, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    busy, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    reaper = Reaper(env.service.credentials, env.clock)

    env.clock.advance(4 * DAY)  # idle for 4 of 10 days: warned (10 - 7 = 3)
    await env.store.mark_used("secret", {busy.id: LastUse(env.clock.now(), "10.0.0.1")})
    assert await _run(env, reaper, ENFORCE) == (0, 0, ["credential.unused"])
    [(_, subject, data)] = [e for e in await _events(env) if e[0] == "credential.unused"]
    assert (subject, data["disable_at"], data["reaping"]) == (idle.id, START + 10 * DAY, "enforce")

    env.clock.advance(6 * DAY)  # day 10: the idle one goes, the used one stays
    assert (await _run(env, reaper, ENFORCE))[:2] == (1, 0)
    assert [c.id for c in await env.store.credentials(env.tenant.id)] == [busy.id]
    [audit] = await env.store.query_audit(LogQuery(env.tenant.id, action="credential.disable"))
    assert (audit.actor, audit.target_id, audit.details["reason"]) == (REAPER, idle.id, "unused")
    assert ("credential.disabled", idle.id) in [e[:2] for e in await _events(env)]

    env.clock.advance(5 * DAY + 1)  # disabled 5 days ago: deleted, with its own audit record and event
    await env.store.mark_used("secret", {busy.id: LastUse(env.clock.now(), "10.0.0.1")})
    assert (await _run(env, reaper, ENFORCE))[:2] == (0, 1)
    [audit] = await env.store.query_audit(LogQuery(env.tenant.id, action="credential.delete"))
    assert (audit.actor, audit.target_id) == (REAPER, idle.id)
    assert ("credential.deleted", idle.id) in [e[:2] for e in await _events(env)]
    assert [s.id for s in await env.store.list_secrets(env.tenant.id, app.client_id)] == [busy.id]


async def test_audit_only_reports_what_would_be_disabled_and_deleted_once(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    idle, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    old, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    await svc.revoke_secret(env.tenant, app.client_id, old.id, actor="t")
    reaper = Reaper(env.service.credentials, env.clock)
    env.clock.advance(11 * DAY)
    assert await _run(env, reaper, AUDIT) == (0, 0, ["policy.violation", "policy.violation"])
    assert await _run(env, reaper, AUDIT) == (0, 0, ["policy.violation", "policy.violation"])  # found again ...
    reports = [e for e in await _events(env) if e[0] == "policy.violation"]
    assert sorted((s, d["reasons"], d["during"]) for _, s, d in reports) == sorted(  # ... but emitted once
        [(idle.id, [WOULD_DISABLE], "reaping"), (old.id, [WOULD_DELETE], "reaping")])
    assert [c.id for c in await env.store.credentials(env.tenant.id)] == [idle.id]  # nothing disabled
    assert [r[1] for r in await env.store.revoked_before(env.tenant.id, env.clock.now())] == [old.id]  # nor deleted
    for action in ("credential.disable", "credential.delete"):
        assert await env.store.query_audit(LogQuery(env.tenant.id, action=action)) == []


async def test_a_credential_used_after_the_scan_is_not_disabled(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    secret, _ = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=365 * 86400)
    env.clock.advance(11 * DAY)
    scanned = await env.store.credentials(env.tenant.id)  # idle when scanned ...
    await env.store.mark_used("secret", {secret.id: LastUse(env.clock.now(), "10.0.0.1")})  # ... used just after
    done = await Reaper(env.service.credentials, env.clock).run(env.tenant.id, plan(scanned, [], env.clock.now(),
                                                                      rule_for(ENFORCE)), {})
    assert done.disabled == 0
    assert [c.id for c in await env.store.credentials(env.tenant.id)] == [secret.id]
    assert await env.store.query_audit(LogQuery(env.tenant.id, action="credential.disable")) == []
