"""The policy dry run's bulk inventory (`keyless.store.policy_inventory`) on SQLite and PostgreSQL:
the live secrets and certificates of a tenant's applications and hosts, in the order the
application-by-application walk gave (applications by creation, each one's secrets then its
certificates, oldest first; the hosts' last), never another tenant's, in the same few queries
whatever the tenant's size, with each certificate's CA verdict checked once and kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.crypto.ca import IssuedByCa, create_ca, issue_client_certificate
from keyless.crypto.client_keys import certificate_signing_request, generate_client_key, self_signed_certificate
from keyless.domain.posture import DAY
from keyless.store import db
from keyless.store import tables as t
from keyless.store.policy_inventory import live_credentials
from tests.unit.store.test_posture_store import NOW, CountingCheck, _app, _cert, _count_queries, _secret, _tenant, guid

Facts = tuple[str, str, str, float | None, bool | None]


class Estate:
    def __init__(self, engine: AsyncEngine, ca_pem: bytes) -> None:
        self.engine, self.ca_pem = engine, ca_pem

    async def inventory(self, check: IssuedByCa | CountingCheck | None) -> tuple[list[Facts], list[Facts]]:
        apps, hosts = await live_credentials(self.engine, guid(1), NOW, check)
        return ([(c.owner, c.facts.kind, c.facts.id, c.facts.lifetime, c.facts.from_internal_ca) for c in apps],
                [(c.owner, c.facts.kind, c.facts.id, c.facts.lifetime, c.facts.from_internal_ca) for c in hosts])


@pytest.fixture
async def estate(url: str) -> AsyncIterator[Estate]:
    engine = db.create_engine(url)
    await db.migrate(engine)
    ca = create_ca("Keyless test CA", now=NOW - DAY)
    csr = certificate_signing_request(generate_client_key("p256"), "x")
    ours = issue_client_certificate(ca, csr, common_name="app", now=NOW - DAY)
    foreign = self_signed_certificate(generate_client_key("p256"), "foreign", now=NOW - DAY)
    async with engine.begin() as conn:
        await _tenant(conn, guid(1), "default")
        await _tenant(conn, guid(2), "other")
        # Created in the order 30, 20 (client ids sort the other way): the walk's order is creation's.
        for cid, at in ((guid(30), NOW - 300 * DAY), (guid(20), NOW - 200 * DAY)):
            await _app(conn, guid(1), cid, f"app-{cid[-2:]}")
            await conn.execute(update(t.applications).where(t.applications.c.client_id == cid).values(created_at=at))
        await _secret(conn, guid(30), guid(301))
        await _secret(conn, guid(30), guid(302), revoked=True)
        await _secret(conn, guid(20), guid(201))
        await conn.execute(update(t.client_secrets).where(t.client_secrets.c.id == guid(201))
                           .values(expires_at=NOW - 1))  # expired: not live
        await _cert(conn, "application", guid(20), guid(202), ours)
        await _cert(conn, "application", guid(30), guid(303), foreign)
        await _app(conn, guid(1), guid(70), "web-01", managed="/tenants/x/hosts/web-01")
        await conn.execute(insert(t.hosts).values(id=guid(71), tenant_id=guid(1), name="web-01",
                                                  system_client_id=guid(70), created_at=NOW - DAY))
        await _cert(conn, "host", guid(71), guid(711), ours)
        await _app(conn, guid(2), guid(90), "theirs")
        await _secret(conn, guid(90), guid(901))
    try:
        yield Estate(engine, ca.cert_pem)
    finally:
        await engine.dispose()


async def test_the_live_credentials_in_the_walks_order(estate: Estate) -> None:
    apps, hosts = await estate.inventory(IssuedByCa(estate.ca_pem))
    cert_life = 365 * DAY
    assert [(o, k, i) for o, k, i, _, _ in apps] == [
        (guid(30), "secret", guid(301)), (guid(30), "certificate", guid(303)), (guid(20), "certificate", guid(202))]
    assert apps[0][3] == 130 * DAY  # the secret's lifetime: created 100 days ago, expires in 30
    assert [(i, ca) for _, _, i, _, ca in apps[1:]] == [(guid(303), False), (guid(202), True)]
    assert [(o, k, i, ca) for o, k, i, _, ca in hosts] == [(guid(71), "certificate", guid(711), True)]
    assert all(life is not None and 0 < life <= cert_life + DAY for _, _, _, life, _ in apps[1:] + hosts)
    assert (await estate.inventory(None))[0][1][4] is None  # no CA: unknown


async def test_verdicts_are_kept_and_the_queries_do_not_grow(estate: Estate) -> None:
    first = CountingCheck(estate.ca_pem)
    _, n_first = await _count_queries(estate.engine, estate.inventory(first))
    again = CountingCheck(estate.ca_pem)
    _, n_again = await _count_queries(estate.engine, estate.inventory(again))
    assert (first.checked, again.checked) == (3, 0)
    async with estate.engine.begin() as conn:
        for n in range(100, 160):
            await _app(conn, guid(1), guid(n), f"more-{n}")
            await _secret(conn, guid(n), guid(10_000 + n))
    _, n_more = await _count_queries(estate.engine, estate.inventory(CountingCheck(estate.ca_pem)))
    assert n_again == n_more == 3 and n_first == 5
