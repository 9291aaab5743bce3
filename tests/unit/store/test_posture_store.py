"""The posture report's facts (`keyless.store.posture`) on SQLite and PostgreSQL: one page costs the
same number of queries whatever its size (no query per application), usage and the host map come
from the sign-in log, another tenant's rows never leak in, and a certificate counts as the internal
CA's only when the CA's signature verifies."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.crypto.ca import IssuedByCa, create_ca, issue_client_certificate
from keyless.crypto.certificates import load_certificate
from keyless.crypto.client_keys import certificate_signing_request, generate_client_key, self_signed_certificate
from keyless.domain.posture import DAY, SignInUsage
from keyless.store import db
from keyless.store import tables as t
from keyless.store.leak_tables import leaks as lk
from keyless.store.posture import SqlPostureStore

NOW = 1_800_000_000.0
SINCE = NOW - 30 * DAY
INTRUDER = "00000000-0000-0000-0000-00000000001g"  # sorts between this tenant's guid(31) and guid(32)


def guid(n: int) -> str:
    return str(uuid.UUID(int=n))


async def _tenant(conn: Any, tid: str, name: str) -> None:
    await conn.execute(insert(t.tenants).values(
        id=tid, name=name, signing_alg="ES256", token_lifetime=3600, max_secret_lifetime=730 * 86400,
        default_secret_lifetime=180 * 86400, assertion_audience="entra", created_at=NOW - 400 * DAY))


async def _app(conn: Any, tid: str, cid: str, name: str, managed: str | None = None) -> None:
    await conn.execute(insert(t.applications).values(
        client_id=cid, tenant_id=tid, object_id=str(uuid.uuid4()), display_name=name, enabled=True,
        identifier_uri=None, open_to_tenant=False, created_at=NOW - 400 * DAY, managed_resource_id=managed))


async def _secret(conn: Any, cid: str, sid: str, *, revoked: bool = False) -> None:
    await conn.execute(insert(t.client_secrets).values(
        id=sid, client_id=cid, hint="kls_abc", digest=b"\0" * 32, pepper_id="p", display_name="",
        created_at=NOW - 100 * DAY, expires_at=NOW + 30 * DAY, last_used_at=None,
        revoked_at=NOW - 1 if revoked else None))


async def _cert(conn: Any, owner_kind: str, owner: str, cert_id: str, pem: bytes) -> None:
    info = load_certificate(pem)
    await conn.execute(insert(t.certificates).values(
        id=cert_id, owner_kind=owner_kind, owner_id=owner, x5t=info.x5t, x5t_s256=info.x5t_s256, der=info.der,
        subject=info.subject, key_type=info.key_type, key_size=info.key_size, not_before=info.not_before,
        not_after=info.not_after, created_at=NOW - DAY, display_name="", last_used_at=None, revoked_at=None))


async def _signin(conn: Any, tid: str, cid: str, cred: str, kind: str, source: str, n: int = 1,
                  when: float = NOW - 3600, result: str = "success") -> None:
    await conn.execute(insert(t.signin_log), [
        {"time": when, "tenant_id": tid, "client_id": cid, "credential_id": cred, "credential_type": kind,
         "result": result, "source": source} for _ in range(n)])


class World:
    def __init__(self, engine: AsyncEngine, ca_pem: bytes) -> None:
        self.engine, self.ca_pem = engine, ca_pem
        self.store = SqlPostureStore(engine)

    async def usage(self) -> SignInUsage:
        return (await self.store.signin_window(guid(1), SINCE)).usage


@pytest.fixture
async def world(url: str) -> AsyncIterator[World]:
    engine = db.create_engine(url)
    await db.migrate(engine)
    ca = create_ca("Keyless test CA", now=NOW - DAY)
    ours = issue_client_certificate(ca, certificate_signing_request(generate_client_key("p256"), "x"),
                                    common_name="cert-app", now=NOW - DAY)
    foreign = self_signed_certificate(generate_client_key("p256"), "foreign", now=NOW - DAY)
    host_pem = issue_client_certificate(ca, certificate_signing_request(generate_client_key("p256"), "h"),
                                        common_name="host:web-01", now=NOW - DAY)
    tid, other = guid(1), guid(2)
    async with engine.begin() as conn:
        await _tenant(conn, tid, "default")
        await _tenant(conn, other, "other")
        for i in range(10, 40):  # 30 secret apps, each signing in from its own address
            await _app(conn, tid, guid(i), f"secret-app-{i}")
            await _secret(conn, guid(i), guid(1000 + i))
            await _signin(conn, tid, guid(i), guid(1000 + i), "secret", f"10.0.1.{i}", n=2)
        await _secret(conn, guid(10), guid(999), revoked=True)  # revoked: not in the report
        await _signin(conn, tid, guid(10), guid(1010), "secret", "10.9.9.9", when=SINCE - 1)  # before the window
        await _app(conn, tid, guid(50), "cert-app")
        await _cert(conn, "application", guid(50), guid(2050), ours)
        await _cert(conn, "application", guid(50), guid(2051), foreign)
        await _app(conn, tid, guid(60), "fed-app")
        await conn.execute(insert(t.federated_credentials).values(
            id=guid(3060), tenant_id=tid, owner_type="application", owner_id=guid(60), name="gh",
            issuer="https://token.actions.githubusercontent.com", subject="repo:acme/*", subject_is_pattern=True,
            audience="api://AzureADTokenExchange", claims=json.dumps({}), algorithms="RS256",
            replay="reuse", max_token_lifetime=3600, description="", created_at=NOW - DAY))
        # A host with its system identity; its agent signs in from 10.0.0.5 with the host certificate.
        await _app(conn, tid, guid(70), "web-01", managed="/tenants/x/hosts/web-01")
        await conn.execute(insert(t.hosts).values(id=guid(71), tenant_id=tid, name="web-01",
                                                  system_client_id=guid(70), created_at=NOW - DAY))
        await conn.execute(insert(t.managed_identities).values(
            client_id=guid(70), tenant_id=tid, name="web-01", kind="system", resource_id="/x", host_id=guid(71),
            created_at=NOW - DAY))
        await _cert(conn, "host", guid(71), guid(4071), host_pem)
        await _signin(conn, tid, guid(70), guid(4071), "certificate", "10.0.0.5", n=3)
        await _signin(conn, tid, guid(10), guid(1010), "secret", "10.0.0.5")  # app 10 also runs on web-01
        # A leak report about app 11's live secret and, older, about a revoked one of app 12.
        await _secret(conn, guid(12), guid(912), revoked=True)
        for n, (cid, sid) in enumerate([(guid(11), guid(1011)), (guid(12), guid(912))]):
            await conn.execute(insert(lk).values(
                id=guid(5000 + n), tenant_id=tid, client_id=cid, secret_id=sid, hint="kls_abc", location=f"f:{n}",
                source="scan", reporter="test", reported_at=NOW - n * DAY, status_before="active", revoked=n == 1))
        # Another tenant's application sorts inside this tenant's range: it must never appear.
        await _app(conn, other, INTRUDER, "intruder")
        await _secret(conn, INTRUDER, guid(36_000))
    try:
        yield World(engine, ca.cert_pem)
    finally:
        await engine.dispose()


async def _count_queries(engine: AsyncEngine, coro: Any) -> tuple[Any, int]:
    seen: list[str] = []

    def before(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        result = await coro
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    return result, len(seen)


async def test_a_page_costs_the_same_queries_whatever_its_size(world: World) -> None:
    """Once each certificate's CA verdict is kept (the first report reads the unchecked ones' DER and
    writes their verdicts: two queries more, whatever their number)."""
    _, n_first = await _count_queries(world.engine, world.store.posture_facts(
        guid(1), usage=await world.usage(), after=None, limit=1000, internal_ca=IssuedByCa(world.ca_pem)))
    small, n_small = await _count_queries(world.engine, world.store.posture_facts(
        guid(1), usage=await world.usage(), after=None, limit=2, internal_ca=IssuedByCa(world.ca_pem)))
    big, n_big = await _count_queries(world.engine, world.store.posture_facts(
        guid(1), usage=await world.usage(), after=None, limit=1000, internal_ca=IssuedByCa(world.ca_pem)))
    assert len(small.workloads) == 2 and small.next_after == guid(11)
    assert len(big.workloads) == 33 and big.next_after is None
    assert n_small == n_big <= 6 and n_first == n_big + 2


async def test_pages_follow_each_other_without_gaps_or_other_tenants(world: World) -> None:
    seen, after = [], None
    while True:
        page = await world.store.posture_facts(guid(1), usage=await world.usage(), after=after, limit=7)
        seen += [w.client_id for w in page.workloads]
        if page.next_after is None:
            break
        after = page.next_after
    assert len(seen) == len(set(seen)) == 33 and INTRUDER not in seen
    intruder_secret = guid(36_000)
    page = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1000)
    assert all(c.credential.id != intruder_secret for w in page.workloads for c in w.credentials)


async def test_usage_host_map_and_credentials(world: World) -> None:
    page = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1000,
                                           internal_ca=IssuedByCa(world.ca_pem))
    by_id = {w.client_id: w for w in page.workloads}
    assert (await world.store.signin_window(guid(1), SINCE)).host_of == {"10.0.0.5": "web-01"}
    app10 = by_id[guid(10)]
    assert [c.credential.id for c in app10.credentials] == [guid(1010)]  # the revoked one is gone
    usage = app10.credentials[0].usage
    assert usage.signins == 3 and usage.sources == ("10.0.1.10", "10.0.0.5")  # most used first; old one out
    assert app10.signins == 3 and app10.sources == ("10.0.1.10", "10.0.0.5")
    assert [(c.credential.id, c.leaked) for c in by_id[guid(11)].credentials] == [(guid(1011), True)]
    assert [n.secret_id for n in by_id[guid(12)].leaks] == [guid(912)] and not by_id[guid(12)].credentials[0].leaked
    certs = {c.credential.id: c.from_internal_ca for c in by_id[guid(50)].credentials}
    assert certs == {guid(2050): True, guid(2051): False}
    fed = by_id[guid(60)].credentials[0]
    assert fed.credential.kind == "federated" and fed.broad_subject
    host = by_id[guid(70)]
    assert host.kind == "identity" and host.identity_kind == "system" and host.hosts == ("web-01",)
    one = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=10, client_id=guid(50))
    assert [w.client_id for w in one.workloads] == [guid(50)]


async def test_score_groups_and_sign_ins_by_rung(world: World) -> None:
    flags = await world.store.credential_flags(guid(1), NOW)
    counted = {(f.kind, tuple(sorted(f.kinds))): f.count for f in flags}
    assert counted == {("application", ("secret",)): 30, ("application", ("certificate",)): 1,
                       ("application", ("federated",)): 1, ("identity", ()): 1}
    assert await world.store.signins_by_rung(guid(1), SINCE) == {"secret": 61, "managed_identity": 3}
    assert (await world.store.signin_window(guid(1), SINCE)).by_rung == {"secret": 61, "managed_identity": 3}


async def _verdicts(world: World) -> dict[str, tuple[bool | None, str | None]]:
    async with world.engine.connect() as conn:
        rows = await conn.execute(select(t.certificates.c.id, t.certificates.c.ca_issued, t.certificates.c.ca_checked))
        return {r.id: (r.ca_issued, r.ca_checked) for r in rows}


class CountingCheck:
    """`IssuedByCa` that counts the signatures it checks."""

    def __init__(self, ca_pem: bytes) -> None:
        self._check = IssuedByCa(ca_pem)
        self.ca_thumbprint = self._check.ca_thumbprint
        self.checked = 0

    def __call__(self, der: bytes) -> bool:
        self.checked += 1
        return self._check(der)


async def test_each_certificate_is_checked_against_the_ca_once_and_the_verdict_kept(world: World) -> None:
    """Migration 0017: the first report checks each certificate's signature and keeps the verdict with
    it; the next report (a restarted server: a new checker) checks none; the host certificate, which no
    page lists, stays unchecked."""
    assert {v for v in (await _verdicts(world)).values()} == {(None, None)}
    first = CountingCheck(world.ca_pem)
    page = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1000,
                                           internal_ca=first)
    assert first.checked == 2
    kept = await _verdicts(world)
    assert kept[guid(2050)] == (True, first.ca_thumbprint) and kept[guid(2051)] == (False, first.ca_thumbprint)
    assert kept[guid(4071)] == (None, None)
    again = CountingCheck(world.ca_pem)
    page2 = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1000,
                                            internal_ca=again)
    assert again.checked == 0

    def verdicts(p: Any) -> dict[str, bool | None]:
        return {c.credential.id: c.from_internal_ca for w in p.workloads for c in w.credentials
                if c.credential.kind == "certificate"}
    assert verdicts(page) == verdicts(page2) == {guid(2050): True, guid(2051): False}


async def test_a_kept_verdict_is_about_one_ca_only(world: World) -> None:
    """A database restored under another installation's CA: the kept verdicts are about the old CA, so
    the new one checks again (and the old CA's certificate is foreign to it)."""
    await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1000,
                                    internal_ca=IssuedByCa(world.ca_pem))
    other = CountingCheck(create_ca("Keyless test CA", now=NOW - DAY).cert_pem)
    assert other.ca_thumbprint != IssuedByCa(world.ca_pem).ca_thumbprint
    page = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1000,
                                           internal_ca=other)
    assert other.checked == 2
    assert {c.credential.id: c.from_internal_ca for w in page.workloads for c in w.credentials
            if c.credential.kind == "certificate"} == {guid(2050): False, guid(2051): False}
    assert (await _verdicts(world))[guid(2050)] == (False, other.ca_thumbprint)


async def test_each_credential_carries_its_own_stored_fields(world: World) -> None:
    """Rows are read by position (store/posture.py): every field of a secret and of a certificate, each
    with a value no other field has, lands where it belongs."""
    cid = guid(90)
    pem = issue_client_certificate(create_ca("Keyless test CA 2", now=NOW - DAY),
                                   certificate_signing_request(generate_client_key("p256"), "y"),
                                   common_name="fields", now=NOW - DAY)
    info = load_certificate(pem)
    async with world.engine.begin() as conn:
        await _app(conn, guid(1), cid, "fields-app")
        await conn.execute(insert(t.client_secrets).values(
            id=guid(9001), client_id=cid, hint="kls_hint", digest=b"\0" * 32, pepper_id="p", display_name="s-name",
            created_at=NOW - 11 * DAY, expires_at=NOW + 12 * DAY, last_used_at=NOW - 13, revoked_at=None))
        await conn.execute(insert(t.certificates).values(
            id=guid(9002), owner_kind="application", owner_id=cid, x5t=info.x5t, x5t_s256=info.x5t_s256,
            der=info.der, subject=info.subject, key_type=info.key_type, key_size=info.key_size,
            not_before=info.not_before, not_after=info.not_after, created_at=NOW - 21 * DAY, display_name="c-name",
            last_used_at=NOW - 23, revoked_at=None))
    page = await world.store.posture_facts(guid(1), usage=await world.usage(), after=None, limit=1, client_id=cid)
    (workload,) = page.workloads
    by_id = {c.credential.id: c for c in workload.credentials}
    secret, cert = by_id[guid(9001)], by_id[guid(9002)]
    assert (secret.credential.kind, secret.credential.owner.id, secret.credential.label,
            secret.credential.display_name, secret.credential.created_at, secret.credential.expires_at,
            secret.credential.last_used_at, secret.leaked) == (
        "secret", cid, "kls_hint", "s-name", NOW - 11 * DAY, NOW + 12 * DAY, NOW - 13, False)
    assert (cert.credential.kind, cert.credential.owner.id, cert.credential.label, cert.credential.display_name,
            cert.credential.created_at, cert.credential.not_before, cert.credential.expires_at,
            cert.credential.last_used_at, cert.from_internal_ca) == (
        "certificate", cid, info.x5t_s256, "c-name", NOW - 21 * DAY, info.not_before, info.not_after, NOW - 23,
        None)
