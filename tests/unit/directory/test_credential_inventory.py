"""One credential model across owner kinds (`keyless.domain.credentials`): the inventory returns
secrets, certificates and federated credentials of applications, identities and hosts as
`Credential`s with one lifetime and state, against a real SQLite store and a frozen clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from keyless.crypto.ca import create_ca
from keyless.crypto.client_keys import certificate_signing_request, generate_client_key, self_signed_certificate
from keyless.directory.errors import Invalid
from keyless.directory.federation import FederationService
from keyless.directory.hosts import HostService
from keyless.domain.credentials import Credential, LastUse, Owner
from keyless.store.federation import SqlFederationStore
from keyless.store.hosts import SqlHostStore
from tests.unit.directory.conftest import START, Env

ISSUER = "https://issuer.example.test"


def _hosts(env: Env) -> tuple[HostService, SqlHostStore]:
    store = SqlHostStore(env.store.engine, env.store)
    return HostService(store, env.clock, env.hasher, credentials=env.service.credentials), store


@pytest.mark.parametrize(
    ("revoked_at", "not_before", "expires_at", "state"),
    [(None, None, None, "active"), (START - 1, None, START + 10, "revoked"), (START + 1, None, None, "active"),
     (None, START + 1, START + 10, "not_yet_valid"), (None, None, START, "expired"),
     (None, START, START + 1, "active")],
)
def test_state_is_one_rule_for_every_kind(revoked_at: float | None, not_before: float | None,
                                          expires_at: float | None, state: str) -> None:
    for kind in ("secret", "certificate", "federated"):
        c = Credential(id="x", kind=kind, owner=Owner("host", "h"), display_name="", created_at=START - 10,
                       expires_at=expires_at, not_before=not_before, revoked_at=revoked_at)
        assert c.state(START) == state


def test_expires_within_counts_only_active_credentials() -> None:
    soon = Credential(id="a", kind="secret", owner=Owner("application", "c"), display_name="", created_at=0,
                      expires_at=START + 3600)
    assert soon.expires_within(START, 3600) and not soon.expires_within(START, 3599)
    assert not Credential(id="f", kind="federated", owner=Owner("identity", "i"), display_name="",
                          created_at=0).expires_within(START, 10**9)
    assert not Credential(id="e", kind="secret", owner=Owner("application", "c"), display_name="", created_at=0,
                          expires_at=START).expires_within(START, 3600)


@dataclass
class EveryKind:
    app: Any
    secret: Any
    plaintext: str
    cert: Any
    host: Any
    host_cert: Any
    identity: Any
    fed: Any


async def every_kind(env: Env) -> EveryKind:
    """One credential of each kind and owner kind: an application's secret and certificate, a host's
    certificate, a managed identity's federated credential."""
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    secret, plaintext = await svc.add_secret(env.tenant, app.client_id, actor="t", expires_in=86400)
    pem = self_signed_certificate(generate_client_key("p256"), "worker", now=START, days=30)
    cert = await svc.add_certificate(env.tenant, app.client_id, pem, actor="t")
    hosts, host_store = _hosts(env)
    host, _, token = await hosts.add_host(env.tenant, "web1", actor="t")
    enrolled = await hosts.enroll(env.tenant, token, certificate_signing_request(generate_client_key("p256"), "a"),
                                  ca=create_ca("test CA", now=START), days=7)
    identity = await hosts.create_identity(env.tenant, "billing", actor="t")
    federation = FederationService(SqlFederationStore(env.store.engine), env.store, env.clock,
                                   identities=host_store, credentials=env.service.credentials)
    owner = await federation.identity(env.tenant, "billing")
    fed = await federation.add(env.tenant, owner, actor="t", name="prod", issuer=ISSUER, subject="repo:x")
    return EveryKind(app, secret, plaintext, cert, host, enrolled.certificate, identity, fed)


async def test_inventory_spans_every_kind_and_owner_kind(env: Env) -> None:
    svc = env.service
    made = await every_kind(env)
    app, secret, plaintext, cert, host, identity, fed = (made.app, made.secret, made.plaintext, made.cert,
                                                         made.host, made.identity, made.fed)
    host_cert_id = made.host_cert.id

    found = {c.id: c for c in await svc.credentials.inventory(env.tenant)}
    assert set(found) == {secret.id, cert.id, host_cert_id, fed.id}
    assert (found[secret.id].kind, found[secret.id].owner) == ("secret", Owner("application", app.client_id))
    assert found[secret.id].label == secret.hint and plaintext not in repr(found[secret.id])
    assert (found[secret.id].expires_at, found[secret.id].state(START)) == (START + 86400, "active")
    assert (found[cert.id].kind, found[cert.id].owner, found[cert.id].label) == (
        "certificate", Owner("application", app.client_id), cert.x5t_s256)
    host_cert = found[host_cert_id]
    assert (host_cert.kind, host_cert.owner, host_cert.expires_at) == (
        "certificate", Owner("host", host.id), made.host_cert.not_after)
    assert (found[fed.id].kind, found[fed.id].owner, found[fed.id].expires_at) == (
        "federated", Owner("identity", identity.client_id), None)

    only_host = await svc.credentials.inventory(env.tenant, owner=Owner("host", host.id))
    assert [c.id for c in only_host] == [host_cert_id]
    expiring = await svc.credentials.inventory(env.tenant, expiring_within=2 * 86400)
    assert {c.id for c in expiring} == {secret.id}


async def test_inventory_leaves_out_revoked_credentials(env: Env) -> None:
    svc = env.service
    app = await svc.create_application(env.tenant, "worker", actor="t")
    keep, _ = await svc.add_secret(env.tenant, app.client_id, actor="t")
    gone, _ = await svc.add_secret(env.tenant, app.client_id, actor="t")
    await svc.revoke_secret(env.tenant, app.client_id, gone.id, actor="t")
    assert [c.id for c in await svc.credentials.inventory(env.tenant)] == [keep.id]


async def test_a_host_has_no_federated_credentials(env: Env) -> None:
    federation = FederationService(SqlFederationStore(env.store.engine), env.store, env.clock,
                                   credentials=env.service.credentials)
    with pytest.raises(Invalid) as refused:
        await federation.credentials(env.tenant, Owner("host", "00000000-0000-0000-0000-000000000000"))
    assert (refused.value.code, refused.value.message) == (
        "invalid_owner", "only applications and managed identities have federated credentials")


async def test_last_use_and_source_of_every_kind_and_the_filters(env: Env) -> None:
    """Last use (time and source address) is kept for secrets, application and host certificates and
    federated credentials; only a later use moves it; the inventory filters by kind, owner kind,
    state, expiry and disuse."""
    svc = env.service
    made = await every_kind(env)
    secret, cert, fed = made.secret, made.cert, made.fed
    host_cert_id = made.host_cert.id
    await env.store.mark_used("secret", {secret.id: LastUse(START + 5, "10.0.0.5")})
    await env.store.mark_used("secret", {secret.id: LastUse(START + 4, "10.0.0.4")})  # older: ignored
    await env.store.mark_used("certificate", {cert.id: LastUse(START + 6, "10.0.0.6"),
                                              host_cert_id: LastUse(START + 7, "192.0.2.7")})
    await env.store.mark_used("federated", {fed.id: LastUse(START + 8, "2001:db8::8")})
    found = {c.id: (c.last_used_at, c.last_used_from) for c in await svc.credentials.inventory(env.tenant)}
    assert found == {secret.id: (START + 5, "10.0.0.5"), cert.id: (START + 6, "10.0.0.6"),
                     host_cert_id: (START + 7, "192.0.2.7"), fed.id: (START + 8, "2001:db8::8")}

    env.clock.advance(100 * 86400)
    assert {c.id for c in await svc.credentials.inventory(env.tenant, unused_for=90 * 86400)} == set(found)
    assert await svc.credentials.inventory(env.tenant, unused_for=101 * 86400) == []
    assert [c.id for c in await svc.credentials.inventory(env.tenant, kind="federated")] == [fed.id]
    assert [c.id for c in await svc.credentials.inventory(env.tenant, owner_kind="host")] == [
        host_cert_id]
    assert {c.id for c in await svc.credentials.inventory(env.tenant, state="expired")} == {
        secret.id, cert.id, host_cert_id}
