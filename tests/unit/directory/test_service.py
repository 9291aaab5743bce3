"""Directory use cases against a real SQLite store: validation, limits, audit, atomicity."""

from __future__ import annotations

import pytest

from keyless.crypto.secrets import has_valid_checksum
from keyless.directory import validation
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.directory.service import MIN_ACTIVATION_DELAY
from keyless.domain.ports import LogQuery
from keyless.oauth.keyring import key_states
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


async def states(env: Env) -> dict[str, str]:
    return dict(key_states(await env.service.keys(env.tenant), env.clock.now()))


async def test_rotation_timeline(env: Env) -> None:
    """I03: the next key is published at once, signs only after the delay, and the old key stays
    published until every token it could sign has expired."""
    (first,) = await env.service.keys(env.tenant)
    new = await env.service.rotate_key(env.tenant, actor="x", activate_in=600)
    assert await states(env) == {first.kid: "active", new.kid: "next"}
    env.clock.advance(600)
    assert await states(env) == {first.kid: "previous", new.kid: "active"}
    env.clock.advance(86400 + 299)  # a 24-hour token signed by the old key just before the switch is still valid
    assert (await states(env))[first.kid] == "previous"
    env.clock.advance(1)
    assert await states(env) == {first.kid: "retired", new.kid: "active"}


async def test_rotation_while_a_key_is_pending(env: Env) -> None:
    """A later-scheduled key takes over at its own time; the key it succeeds stays published for the
    full retention (no key is cut off while tokens it signed are still valid)."""
    (first,) = await env.service.keys(env.tenant)
    pending = await env.service.rotate_key(env.tenant, actor="x", activate_in=600, alg="ES256")
    now_key = await env.service.rotate_key(env.tenant, actor="x", activate_in=0)
    env.clock.advance(MIN_ACTIVATION_DELAY)
    assert await states(env) == {first.kid: "previous", pending.kid: "next", now_key.kid: "active"}
    env.clock.advance(600 - MIN_ACTIVATION_DELAY)
    assert await states(env) == {first.kid: "previous", pending.kid: "active", now_key.kid: "previous"}
    env.clock.advance(86400 + 300)
    assert await states(env) == {first.kid: "retired", pending.kid: "active", now_key.kid: "retired"}


async def test_retire_refuses_the_only_signing_key(env: Env) -> None:
    (only,) = await env.service.keys(env.tenant)
    with pytest.raises(Conflict) as err:
        await env.service.retire_key(env.tenant, only.kid, actor="x")
    assert err.value.code == "last_signing_key"
    newer = await env.service.rotate_key(env.tenant, actor="x", activate_in=0)
    env.clock.advance(MIN_ACTIVATION_DELAY)
    await env.service.retire_key(env.tenant, only.kid, actor="x")
    assert await states(env) == {only.kid: "retired", newer.kid: "active"}
    with pytest.raises(NotFound):
        await env.service.retire_key(env.tenant, only.kid, actor="x")


async def test_a_new_key_never_signs_before_every_replica_publishes_it(env: Env) -> None:
    """Replicas publish a new key within 1 s (docs/deployment.md); "at once" means after twice that, so no
    token carries a `kid` that another replica's JWKS does not list yet."""
    (first,) = await env.service.keys(env.tenant)
    new = await env.service.rotate_key(env.tenant, actor="x", activate_in=0)
    assert new.activates_at == env.clock.now() + MIN_ACTIVATION_DELAY
    assert await states(env) == {first.kid: "active", new.kid: "next"}
    env.clock.advance(MIN_ACTIVATION_DELAY)
    assert (await states(env))[new.kid] == "active"


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


async def test_no_lockout_through_the_api(env: Env) -> None:
    from keyless.crypto.ca import create_ca
    from keyless.crypto.certificates import certificate_signing_request, generate_client_key
    from keyless.directory.bootstrap import bootstrap

    other = await env.service.create_tenant("other", actor="x")
    csr = certificate_signing_request(generate_client_key("p256"), "cli")
    boot = await bootstrap(env.service, tenant_name="boot", ca=create_ca("ca", now=env.clock.now()), cli_csr=csr)
    cli = boot.cli.client_id
    for action in (
        env.service.update_application(boot.tenant, cli, actor=cli, enabled=False),
        env.service.delete_application(boot.tenant, cli, actor=cli),
        env.service.update_application(boot.tenant, boot.management.client_id, actor="someone", enabled=False),
        env.service.delete_application(boot.tenant, boot.management.client_id, actor="someone"),
    ):
        with pytest.raises(Conflict) as err:
            await action
        assert err.value.code in {"would_lock_out", "protected_application"}
    assert await env.service.list_secrets(boot.tenant, cli) == []  # no shared secret in a new installation
    (cert,) = await env.service.list_certificates(boot.tenant, cli)
    with pytest.raises(Conflict):
        await env.service.revoke_certificate(boot.tenant, cli, cert.id, actor=cli)
    (grant,) = await env.service.list_grants(boot.tenant, client_id=cli)
    with pytest.raises(Conflict):
        await env.service.revoke_grant(boot.tenant, grant.id, actor=cli)
    # Another admin may do it; and the caller may rotate its own credential once it has a second one.
    record, _ = await env.service.add_secret(boot.tenant, cli, actor=cli)
    await env.service.revoke_certificate(boot.tenant, cli, cert.id, actor=cli)
    with pytest.raises(Conflict):
        await env.service.revoke_secret(boot.tenant, cli, record.id, actor=cli)
    await env.service.update_application(boot.tenant, cli, actor="other-admin", enabled=False)
    assert other.name == "other"


async def test_changing_the_signing_algorithm_rotates_in_a_key_of_that_type(env: Env) -> None:
    (first,) = await env.service.keys(env.tenant)
    assert first.alg == "RS256"
    updated = await env.service.update_tenant(env.tenant, actor="x", signing_alg="ES256")
    keys = await env.service.keys(updated)
    (new,) = [k for k in keys if k.kid != first.kid]
    assert new.alg == "ES256"
    assert await states(env) == {first.kid: "active", new.kid: "next"}
