"""Federated credentials and identity-token audiences per owner kind, against a real SQLite store:
applications and managed identities are separate owners, each route takes only its own kind, and an
identity's rows go with the identity (and a system-assigned one's with its host)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.directory.federation import FederationService
from keyless.directory.hosts import HostService
from keyless.domain.federation import owner_type_of
from keyless.domain.model import AuditEvent
from keyless.ids import new_guid
from keyless.store.federation import SqlFederationStore
from keyless.store.hosts import SqlHostStore
from tests.unit.directory.conftest import Env

ISSUER = "https://issuer.example.test"
AUDIENCE = "api://KeylessTokenExchange"


def _services(env: Env) -> tuple[FederationService, HostService, SqlFederationStore]:
    hosts = SqlHostStore(env.store.engine, env.store)
    fed_store = SqlFederationStore(env.store.engine)
    return (FederationService(fed_store, env.store, env.clock, identities=hosts,
                              credentials=env.service.credentials),
            HostService(hosts, env.clock, env.hasher, credentials=env.service.credentials), fed_store)


async def test_identity_owner_is_separate_from_applications(env: Env) -> None:
    federation, hosts, store = _services(env)
    identity = await hosts.create_identity(env.tenant, "billing", actor="t")
    app = await env.service.create_application(env.tenant, "orders", actor="t")
    owner = await federation.identity(env.tenant, "billing")
    assert (owner.kind, owner.id) == ("identity", identity.client_id)
    assert await federation.identity(env.tenant, identity.resource_id) == owner
    added = await federation.add(env.tenant, owner, actor="t", name="prod", issuer=ISSUER, subject="s")
    assert (added.owner_type, added.owner_id) == ("identity", identity.client_id)
    assert await store.federated_credentials(env.tenant.id, "application", identity.client_id) == []
    managed = await env.store.get_application(env.tenant.id, identity.client_id)
    assert managed is not None and owner_type_of(managed) == "identity"
    assert owner_type_of(app) == "application"
    with pytest.raises(Conflict) as refused:
        await federation.application(env.tenant, identity.client_id)
    assert refused.value.code == "managed_identity"
    with pytest.raises(NotFound):
        await federation.identity(env.tenant, app.client_id)


async def test_system_assigned_identities_take_audiences_not_credentials(env: Env) -> None:
    federation, hosts, store = _services(env)
    _, system, _ = await hosts.add_host(env.tenant, "build-01", actor="t")
    with pytest.raises(Invalid) as refused:
        await federation.identity(env.tenant, system.client_id)
    assert refused.value.code == "system_assigned"
    owner = await federation.identity(env.tenant, system.client_id, user_assigned=False)
    await federation.allow_identity_token_audience(env.tenant, owner, AUDIENCE, actor="t")
    assert await store.identity_token_audiences(env.tenant.id, "identity", system.client_id) == {AUDIENCE}
    await hosts.remove_host(env.tenant, "build-01", actor="t")
    assert await store.identity_token_audiences(env.tenant.id, "identity", system.client_id) == frozenset()


async def test_deleting_an_identity_deletes_its_rows(env: Env) -> None:
    federation, hosts, store = _services(env)
    identity = await hosts.create_identity(env.tenant, "billing", actor="t")
    owner = await federation.identity(env.tenant, "billing")
    await federation.add(env.tenant, owner, actor="t", name="prod", issuer=ISSUER, subject="s")
    await federation.allow_identity_token_audience(env.tenant, owner, AUDIENCE, actor="t")
    # a row an earlier build let the application routes write for the identity goes too
    legacy = replace(await federation.add(env.tenant, owner, actor="t", name="old", issuer=ISSUER, subject="o"),
                     id=new_guid(), owner_type="application", name="legacy")
    await env.store.add_federated_credential(legacy, AuditEvent(time=0, tenant_id=env.tenant.id, actor="t",
                                                            action="x", target_type="x", target_id="x"))
    await hosts.delete_identity(env.tenant, "billing", actor="t")
    assert await store.federated_credentials(env.tenant.id, "identity", identity.client_id) == []
    assert await store.identity_token_audiences(env.tenant.id, "identity", identity.client_id) == frozenset()
    assert await store.list_federated_credentials(env.tenant.id) == []
