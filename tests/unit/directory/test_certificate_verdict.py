"""A certificate gets its "issued by the installation's CA" verdict when it is stored, through the
credential funnel (`CredentialService.add_certificate`: the policy check computes it anyway), kept with
the row for the CA it is about (`ca_issued`, `ca_checked`, migration 0017): the posture report then
checks no new certificate's signature again. Without a CA to check against nothing is kept, and the
report checks it later, as before."""

from __future__ import annotations

from sqlalchemy import select

from keyless.crypto.ca import create_ca
from keyless.crypto.client_keys import certificate_signing_request, generate_client_key, self_signed_certificate
from keyless.directory.service import DirectoryService
from keyless.domain.posture import SignInUsage
from keyless.store import tables as t
from keyless.store.posture import SqlPostureStore
from tests.unit.directory.conftest import START, Env
from tests.unit.store.test_posture_store import CountingCheck


async def _kept(env: Env) -> dict[str, tuple[bool | None, str | None]]:
    c = t.certificates
    async with env.store.engine.connect() as conn:
        rows = (await conn.execute(select(c.c.id, c.c.ca_issued, c.c.ca_checked))).all()
    return {r.id: (None if r.ca_issued is None else bool(r.ca_issued), r.ca_checked) for r in rows}


async def test_a_stored_certificate_keeps_its_ca_verdict_and_the_report_checks_none(env: Env) -> None:
    ca = create_ca("test CA", now=START)
    at_write = CountingCheck(ca.cert_pem)
    svc = DirectoryService(env.store, env.clock, env.hasher, env.kek, internal_ca=at_write)
    app = await svc.create_application(env.tenant, "worker", actor="t")
    foreign = await svc.add_certificate(
        env.tenant, app.client_id, self_signed_certificate(generate_client_key("p256"), "worker", now=START, days=30),
        actor="t")
    ours, _ = await svc.issue_certificate(env.tenant, app.client_id,
                                          certificate_signing_request(generate_client_key("p256"), "w"), actor="t",
                                          ca=ca, days=7)
    assert await _kept(env) == {foreign.id: (False, at_write.ca_thumbprint), ours.id: (True, at_write.ca_thumbprint)}
    at_report = CountingCheck(ca.cert_pem)
    page = await SqlPostureStore(env.store.engine).posture_facts(env.tenant.id, usage=SignInUsage(), after=None,
                                                                 limit=10, internal_ca=at_report)
    assert at_report.checked == 0
    assert {c.credential.id: c.from_internal_ca for w in page.workloads for c in w.credentials} == {
        foreign.id: False, ours.id: True}


async def test_without_a_ca_to_check_against_nothing_is_kept(env: Env) -> None:
    app = await env.service.create_application(env.tenant, "worker", actor="t")
    cert = await env.service.add_certificate(
        env.tenant, app.client_id, self_signed_certificate(generate_client_key("p256"), "worker", now=START, days=30),
        actor="t")
    assert await _kept(env) == {cert.id: (None, None)}
