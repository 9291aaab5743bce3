"""Directory use cases against a real SQLite store: validation, limits, audit, atomicity."""

from __future__ import annotations

import pytest

from keyless.crypto.secrets import has_valid_checksum
from keyless.directory import validation
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.domain.ports import LogQuery
from tests.unit.directory.conftest import Env


async def test_create_application_records_audit_and_invalidates(env: Env) -> None:
    before = env.changes
    app = await env.service.create_application(env.tenant, "orders", actor="admin-1",
                                               identifier_uri="api://orders", roles=["Orders.Read"])
    assert env.changes == before + 1
    stored = await env.store.get_application(env.tenant.id, app.client_id)
    assert stored == app
    events = await env.store.query_audit(LogQuery(tenant_id=env.tenant.id, action="application.create"))
    assert [(e.actor, e.target_id) for e in events] == [("admin-1", app.client_id)]
    assert events[0].details["roles"] == ["Orders.Read"]


async def test_duplicate_identifier_uri_is_conflict_and_changes_nothing(env: Env) -> None:
    await env.service.create_application(env.tenant, "a", actor="x", identifier_uri="api://dup")
    count = len(await env.store.list_applications(env.tenant.id))
    with pytest.raises(Conflict) as err:
        await env.service.create_application(env.tenant, "b", actor="x", identifier_uri="api://dup")
    assert err.value.code == "identifier_uri_in_use"
    assert len(await env.store.list_applications(env.tenant.id)) == count


@pytest.mark.parametrize("uri", ["orders", "http://orders", "api://x#frag", "api://x/.default", "api://x/",
                                 "api://has space", "a" * 600])
async def test_bad_identifier_uris_refused(env: Env, uri: str) -> None:
    with pytest.raises(Invalid) as err:
        await env.service.create_application(env.tenant, "r", actor="x", identifier_uri=uri)
    assert err.value.code == "invalid_identifier_uri"


async def test_roles_need_a_resource(env: Env) -> None:
    with pytest.raises(Invalid) as err:
        await env.service.create_application(env.tenant, "c", actor="x", roles=["A.B"])
    assert err.value.code == "identifier_uri_required"


async def test_secret_is_shown_once_and_stored_hashed(env: Env) -> None:
    app = await env.service.create_application(env.tenant, "c", actor="x")
    record, plaintext = await env.service.add_secret(env.tenant, app.client_id, actor="x")
    assert has_valid_checksum(plaintext)
    assert record.digest == env.hasher.digest(plaintext)
    assert record.hint == plaintext[4:7]
    assert record.expires_at == env.clock.now() + env.tenant.default_secret_lifetime
    listed = await env.service.list_secrets(env.tenant, app.client_id)
    assert [s.id for s in listed] == [record.id]
    assert plaintext not in repr(listed)
    events = await env.store.query_audit(LogQuery(tenant_id=env.tenant.id, action="secret.add"))
    assert plaintext not in repr(events)


async def test_secret_lifetime_bounded_by_tenant_policy(env: Env) -> None:
    app = await env.service.create_application(env.tenant, "c", actor="x")
    with pytest.raises(Invalid):
        await env.service.add_secret(env.tenant, app.client_id, actor="x",
                                     expires_in=env.tenant.max_secret_lifetime + 1)
    with pytest.raises(Invalid):
        await env.service.add_secret(env.tenant, app.client_id, actor="x", expires_in=10)


async def test_at_most_ten_live_secrets(env: Env) -> None:
    app = await env.service.create_application(env.tenant, "c", actor="x")
    for _ in range(10):
        await env.service.add_secret(env.tenant, app.client_id, actor="x")
    with pytest.raises(Conflict) as err:
        await env.service.add_secret(env.tenant, app.client_id, actor="x")
    assert err.value.code == "too_many_secrets"


async def test_revoke_secret(env: Env) -> None:
    app = await env.service.create_application(env.tenant, "c", actor="x")
    record, _ = await env.service.add_secret(env.tenant, app.client_id, actor="x")
    await env.service.revoke_secret(env.tenant, app.client_id, record.id, actor="x")
    assert await env.service.list_secrets(env.tenant, app.client_id) == []
    client = await env.store.get_client(env.tenant.id, app.client_id)
    assert client is not None and client.secrets == ()
    with pytest.raises(NotFound):
        await env.service.revoke_secret(env.tenant, app.client_id, record.id, actor="x")


async def test_grant_assigns_role_and_is_idempotent(env: Env) -> None:
    res = await env.service.create_application(env.tenant, "r", actor="x", identifier_uri="api://r",
                                               roles=["R.Read", "R.Write"])
    client = await env.service.create_application(env.tenant, "c", actor="x")
    first = await env.service.grant(env.tenant, client.client_id, "api://r", "R.Read", actor="x")
    again = await env.service.grant(env.tenant, client.client_id, "api://r", "R.Read", actor="x")
    assert first.id == again.id
    assert await env.store.assigned_roles(env.tenant.id, client.object_id, res.client_id) == ("R.Read",)
    await env.service.revoke_grant(env.tenant, first.id, actor="x")
    assert await env.store.assigned_roles(env.tenant.id, client.object_id, res.client_id) is None


async def test_grant_unknown_role_or_resource(env: Env) -> None:
    await env.service.create_application(env.tenant, "r", actor="x", identifier_uri="api://r", roles=["R.Read"])
    client = await env.service.create_application(env.tenant, "c", actor="x")
    with pytest.raises(NotFound) as err:
        await env.service.grant(env.tenant, client.client_id, "api://r", "R.Admin", actor="x")
    assert err.value.code == "role_not_found"
    with pytest.raises(NotFound) as err:
        await env.service.grant(env.tenant, client.client_id, "api://nope", "R.Read", actor="x")
    assert err.value.code == "resource_not_found"


async def test_other_tenant_objects_are_not_found(env: Env) -> None:
    other = await env.service.create_tenant("other", actor="x")
    app = await env.service.create_application(other, "c", actor="x")
    with pytest.raises(NotFound):
        await env.service.application(env.tenant, app.client_id)
    with pytest.raises(NotFound):
        await env.service.add_secret(env.tenant, app.client_id, actor="x")
    with pytest.raises(NotFound):
        await env.service.delete_application(env.tenant, app.client_id, actor="x")


async def test_delete_application_removes_secrets_and_grants(env: Env) -> None:
    await env.service.create_application(env.tenant, "r", actor="x", identifier_uri="api://r", roles=["R.Read"])
    client = await env.service.create_application(env.tenant, "c", actor="x")
    await env.service.add_secret(env.tenant, client.client_id, actor="x")
    await env.service.grant(env.tenant, client.client_id, "api://r", "R.Read", actor="x")
    await env.service.delete_application(env.tenant, client.client_id, actor="x")
    assert await env.store.get_client(env.tenant.id, client.client_id) is None
    assert await env.service.list_grants(env.tenant) == []


async def test_rotation_timeline(env: Env) -> None:
    """I03: the next key is published at once, signs only after the delay, and the old key stays
    published until every token it could sign has expired."""
    (first,) = await env.service.keys(env.tenant)
    new = await env.service.rotate_key(env.tenant, actor="x", activate_in=600)
    keys = {k.kid: k for k in await env.service.keys(env.tenant)}
    now = env.clock.now()
    assert keys[new.kid].published_at(now) and not keys[new.kid].signs_at(now)
    assert keys[first.kid].signs_at(now)
    old_retire = keys[first.kid].retire_at
    assert old_retire is not None
    assert old_retire >= new.activates_at + 86400  # the longest token signed by the old key expires first
    env.clock.advance(600)
    assert keys[new.kid].signs_at(env.clock.now())


async def test_retire_refuses_the_only_signing_key(env: Env) -> None:
    (only,) = await env.service.keys(env.tenant)
    with pytest.raises(Conflict) as err:
        await env.service.retire_key(env.tenant, only.kid, actor="x")
    assert err.value.code == "last_signing_key"
    await env.service.rotate_key(env.tenant, actor="x", activate_in=0)
    await env.service.retire_key(env.tenant, only.kid, actor="x")
    keys = {k.kid: k for k in await env.service.keys(env.tenant)}
    assert not keys[only.kid].published_at(env.clock.now())


async def test_tenant_update_validation(env: Env) -> None:
    with pytest.raises(Invalid):
        await env.service.update_tenant(env.tenant, actor="x", token_lifetime=10)
    with pytest.raises(Invalid):
        await env.service.update_tenant(env.tenant, actor="x", signing_alg="HS256")
    updated = await env.service.update_tenant(env.tenant, actor="x", token_lifetime=600, signing_alg="ES256")
    assert (updated.token_lifetime, updated.signing_alg) == (600, "ES256")
    assert await env.store.get_tenant("default") == updated


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("1y", 31536000)])
def test_duration(text: str, seconds: int) -> None:
    assert validation.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1w", "0d", "1.5d"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(Invalid):
        validation.duration(text)
