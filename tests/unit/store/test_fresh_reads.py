"""A credential created through one replica works at once on another, even before that replica's
change notification arrives (issue 16, scope 3): a check that fails against a *cached* client
record re-reads it once from the store. Two `CachedDirectory`s over one database stand for two
replicas whose change feed has not delivered yet (none is wired here), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest

from keyless.clock import FrozenClock
from keyless.crypto.secrets import SecretHasher
from keyless.directory.service import DirectoryService
from keyless.domain.model import Tenant
from keyless.oauth.client_auth import private_key_jwt, secret
from keyless.oauth.client_auth.certificates import CertificateCache
from keyless.oauth.errors import InvalidClient
from keyless.store.cache import CachedDirectory
from keyless.store.directory import SqlDirectoryStore
from tests.support.certs import claims_for, new_cert
from tests.unit.store.conftest import Directory

ISSUER = "https://keyless.test/t/v2.0"


@dataclass
class Replicas:
    store: SqlDirectoryStore
    service: DirectoryService  # "replica A": where changes are made
    other: CachedDirectory  # "replica B": a warm cache that has heard of no change
    clock: FrozenClock
    hasher: SecretHasher
    tenant: Tenant
    client_id: str
    statements: list[str]


@pytest.fixture
async def replicas(directory: Directory) -> Replicas:
    d = directory
    app = await d.service.create_application(d.tenant, "worker", actor="test")
    return Replicas(d.store, d.service, CachedDirectory(d.store, d.clock, ttl=5.0), d.clock, d.hasher, d.tenant,
                    app.client_id, d.statements)


async def _secret(r: Replicas, presented: str, client_id: str | None = None) -> str:
    try:
        await secret.verify(r.tenant, client_id or r.client_id, presented, r.other, r.hasher, r.clock,
                            method=secret.POST)
    except InvalidClient as refused:
        return refused.detail or "refused"
    return "ok"


async def test_a_secret_added_on_another_replica_works_before_its_notification(replicas: Replicas) -> None:
    r = replicas
    _, first = await r.service.add_secret(r.tenant, r.client_id, actor="test")
    assert await _secret(r, first) == "ok"  # B now holds the client, with one secret, for 5 s
    r.clock.advance(0.01)
    _, second = await r.service.add_secret(r.tenant, r.client_id, actor="test")  # on A; B hears nothing
    r.clock.advance(0.01)
    assert await _secret(r, second) == "ok"
    assert await _secret(r, "kls_" + "A" * 49) == "wrong_secret"


async def test_a_certificate_added_on_another_replica_works_before_its_notification(replicas: Replicas) -> None:
    r = replicas
    _, first = await r.service.add_secret(r.tenant, r.client_id, actor="test")
    assert await _secret(r, first) == "ok"  # B caches the client, with no certificate
    r.clock.advance(0.01)
    cert = new_cert("p256")
    await r.service.add_certificate(r.tenant, r.client_id, cert.cert_pem, actor="test")
    r.clock.advance(0.01)
    claims = claims_for(r.client_id, ISSUER, jti=uuid.uuid4().hex, iat=int(r.clock.now()),
                        nbf=int(r.clock.now()), exp=int(r.clock.now()) + 300)
    result = await private_key_jwt.verify(
        cert.sign(claims, alg="ES256"), None, r.tenant, r.other, r.store, r.clock, CertificateCache(),
        issuer=ISSUER, token_endpoints=(),
    )
    assert result.credential_type == "certificate" and result.app.client_id == r.client_id


async def test_a_warm_failure_rereads_once_for_known_and_unknown_clients_alike(replicas: Replicas) -> None:
    """Equal work holds with the re-read: a wrong secret and an unknown client id each cost one more
    read of the same statements (docs/security.md), and concurrent failures share that read."""
    r = replicas
    await r.service.add_secret(r.tenant, r.client_id, actor="test")
    unknown = str(uuid.uuid4())
    counts: dict[str, list[int]] = {}
    for name, client_id in (("known", r.client_id), ("unknown", unknown)):
        counts[name] = []
        for _ in range(2):  # cold (read once, after arrival: no re-read), then warm (one re-read)
            r.clock.advance(0.01)
            r.statements.clear()
            await _secret(r, "kls_" + "A" * 49, client_id)
            counts[name].append(len(r.statements))
        r.clock.advance(0.01)
        r.statements.clear()
        await asyncio.gather(*(_secret(r, "kls_" + "B" * 49, client_id) for _ in range(20)))
        counts[name].append(len(r.statements))
    assert counts["known"] == counts["unknown"] == [4, 4, 4], counts
