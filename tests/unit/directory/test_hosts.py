"""Host and managed-identity use cases against a real SQLite store with a frozen clock: join tokens
(single use, expiry, stored hashed), entitlement through host certificates, renewal, removal."""

from __future__ import annotations

import pytest

from keyless.crypto.ca import create_ca
from keyless.crypto.certificates import certificate_signing_request, generate_client_key
from keyless.directory.errors import Invalid
from keyless.directory.hosts import HostService, JoinRefused
from keyless.store.hosts import SqlHostStore
from tests.unit.directory.conftest import START, Env


def _service(env: Env) -> HostService:
    return HostService(SqlHostStore(env.store.engine, env.store), env.clock, env.hasher,
                       credentials=env.service.credentials)


def _csr() -> bytes:
    return certificate_signing_request(generate_client_key("p256"), "agent")


async def test_join_token_is_hashed_single_use_and_expires(env: Env) -> None:
    service = _service(env)
    ca = create_ca("test CA", now=START)
    host, identity, token = await service.add_host(env.tenant, "build-01", actor="admin", join_ttl=600)
    stored = await service.host(env.tenant, "build-01")
    assert stored.join_digest is not None and token.encode() not in stored.join_digest
    assert stored.join_digest == env.hasher.digest(token)
    assert identity.kind == "system" and identity.host_id == host.id
    env.clock.advance(601)
    with pytest.raises(JoinRefused):
        await service.enroll(env.tenant, token, _csr(), ca=ca)
    _, fresh = await service.new_join_token(env.tenant, host.id, actor="admin")
    assert fresh != token
    with pytest.raises(JoinRefused):
        await service.enroll(env.tenant, token, _csr(), ca=ca)  # the old one no longer works
    done = await service.enroll(env.tenant, fresh, _csr(), ca=ca, days=7)
    assert done.certificate.not_after - done.certificate.not_before == 7 * 86400
    with pytest.raises(JoinRefused):
        await service.enroll(env.tenant, fresh, _csr(), ca=ca)  # spent
    enrolled = await service.host(env.tenant, host.id)
    assert enrolled.enrolled_at is not None and enrolled.join_digest is None


async def test_a_bad_csr_does_not_spend_the_token(env: Env) -> None:
    service = _service(env)
    ca = create_ca("test CA", now=START)
    _, _, token = await service.add_host(env.tenant, "h2", actor="admin")
    with pytest.raises(Invalid):
        await service.enroll(env.tenant, token, b"not a csr", ca=ca)
    assert (await service.enroll(env.tenant, token, _csr(), ca=ca)).host.name == "h2"


async def test_entitlement_follows_assignment_renewal_and_removal(env: Env) -> None:
    service = _service(env)
    ca = create_ca("test CA", now=START)
    host, system, token = await service.add_host(env.tenant, "h3", actor="admin")
    first = (await service.enroll(env.tenant, token, _csr(), ca=ca)).certificate
    user = await service.create_identity(env.tenant, "billing-api", actor="admin")

    async def thumbprints(client_id: str) -> set[str]:
        record = await env.store.get_client(env.tenant.id, client_id)
        assert record is not None
        return {c.x5t_s256 for c in record.certificates}

    assert await thumbprints(system.client_id) == {first.x5t_s256}
    assert await thumbprints(user.client_id) == set()
    await service.assign(env.tenant, "billing-api", "h3", actor="admin")
    assert await thumbprints(user.client_id) == {first.x5t_s256}
    second = (await service.renew(env.tenant, host, first.id, _csr(), ca=ca)).certificate
    assert await thumbprints(user.client_id) == {first.x5t_s256, second.x5t_s256}
    third = (await service.renew(env.tenant, host, second.id, _csr(), ca=ca)).certificate
    assert await thumbprints(system.client_id) == {second.x5t_s256, third.x5t_s256}  # the oldest is gone
    await service.unassign(env.tenant, "billing-api", "h3", actor="admin")
    assert await thumbprints(user.client_id) == set()
    await service.remove_host(env.tenant, "h3", actor="admin")
    assert await env.store.get_client(env.tenant.id, system.client_id) is None
    record = await env.store.get_client(env.tenant.id, user.client_id)
    assert record is not None and record.app.managed_resource_id == user.resource_id
