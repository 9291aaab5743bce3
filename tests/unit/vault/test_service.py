"""Vault use cases over a real SQLite store: versions, attributes, CAS, paging, soft-delete,
retention, purge protection, backup/restore, key rotation and the access rules."""

from __future__ import annotations

import pytest

from keyless.vault import model as m
from keyless.vault.errors import (
    BadParameter,
    Forbidden,
    PreconditionFailed,
    SecretNotFound,
    TooLarge,
    VaultConflict,
    VaultNotFound,
)
from tests.unit.vault.conftest import Env

PLAIN = m.SecretAttributes()


async def test_set_get_versions_and_latest(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    one = await s.set_secret(v, who, "DB-Password", "first", PLAIN)
    env.clock.advance(1)
    two = await s.set_secret(v, who, "db-password", "second", m.SecretAttributes(content_type="text/plain"))
    latest = await s.get_secret(v, who, "db-password", None)
    assert latest.value == "second" and latest.version.version == two.version
    assert latest.version.name == "DB-Password"  # the display name is the first one given
    assert (await s.get_secret(v, who, "DB-PASSWORD", one.version)).value == "first"
    versions, token = await s.list_versions(v, who, "db-password", token=None, limit=None)
    assert [x.version for x in versions] == [one.version, two.version] and token is None


async def test_reads_are_audited_with_the_version_and_writes_in_the_store(env: Env) -> None:
    version = await env.service.set_secret(env.vault, env.owner, "a", "x", PLAIN)
    await env.service.get_secret(env.vault, env.owner, "a", None)
    [event] = [e for e in env.audit if e.action == "vault.secret.get"]
    assert event.actor == env.owner.client_id and event.details["version"] == version.version
    assert event.details["principal"] == env.owner.object_id and event.target_id == "a"
    assert "x" not in repr(event)


async def test_value_cap_and_attribute_rules(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    await s.set_secret(v, who, "big", "x" * m.MAX_VALUE_BYTES, PLAIN)
    with pytest.raises(TooLarge):
        await s.set_secret(v, who, "big", "x" * (m.MAX_VALUE_BYTES + 1), PLAIN)
    with pytest.raises(TooLarge):  # the cap is on bytes, not characters
        await s.set_secret(v, who, "big", "é" * (m.MAX_VALUE_BYTES // 2 + 1), PLAIN)
    with pytest.raises(BadParameter):
        await s.set_secret(v, who, "t", "x", m.SecretAttributes(not_before=20, expires=10))
    with pytest.raises(BadParameter):
        await s.set_secret(v, who, "t", "x", m.SecretAttributes(tags={"k": "v" * 300}))
    versions, _ = await s.list_versions(v, who, "big", token=None, limit=None)
    assert len(versions) == 1  # the refused writes changed nothing


async def test_update_changes_attributes_not_the_value(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    version = await s.set_secret(v, who, "a", "x", PLAIN)
    env.clock.advance(5)
    updated = await s.update_secret(v, who, "a", None, {"enabled": False, "tags": {"k": "v"}})
    assert updated.version == version.version and updated.attributes.tags == {"k": "v"}
    assert updated.updated_at == version.created_at + 5
    with pytest.raises(Forbidden):  # a disabled version is not readable
        await s.get_secret(v, who, "a", None)
    await s.update_secret(v, who, "a", version.version, {"enabled": True})
    assert (await s.get_secret(v, who, "a", None)).value == "x"


async def test_g05_if_match_is_a_compare_and_set(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    one = await s.set_secret(v, who, "cas", "1", PLAIN)
    two = await s.set_secret(v, who, "cas", "2", PLAIN, if_match=one.version)
    with pytest.raises(PreconditionFailed):
        await s.set_secret(v, who, "cas", "3", PLAIN, if_match=one.version)  # lost the race
    with pytest.raises(PreconditionFailed):
        await s.update_secret(v, who, "cas", None, {"enabled": False}, if_match=one.version)
    with pytest.raises(PreconditionFailed):
        await s.set_secret(v, who, "new-one", "x", PLAIN, if_match=one.version)
    assert (await s.get_secret(v, who, "cas", None)).version.version == two.version


async def test_g05_versions_of_other_secrets_and_malformed_ids_are_404(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    a = await s.set_secret(v, who, "a", "x", PLAIN)
    await s.set_secret(v, who, "b", "y", PLAIN)
    with pytest.raises(SecretNotFound):
        await s.get_secret(v, who, "b", a.version)
    with pytest.raises(SecretNotFound):
        await s.get_secret(v, who, "a", "../../x")
    with pytest.raises(SecretNotFound):
        await s.get_secret(v, who, "nope", None)


async def test_paging_follows_names_and_respects_limits(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    for i in range(7):
        await s.set_secret(v, who, f"s{i}", "x", PLAIN)
    seen, token = [], None
    while True:
        page, token = await s.list_secrets(v, who, token=token, limit=3)
        seen += [p.name for p in page]
        if token is None:
            break
    assert seen == [f"s{i}" for i in range(7)]
    with pytest.raises(BadParameter):
        await s.list_secrets(v, who, token=None, limit=26)
    with pytest.raises(BadParameter):
        await s.list_secrets(v, who, token="../x", limit=None)


async def test_g06_delete_recover_purge_and_retention(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    await s.set_secret(v, who, "gone", "x", PLAIN)
    deleted = await s.delete_secret(v, who, "gone")
    assert deleted.scheduled_purge_at == env.clock.now() + 90 * 86400
    with pytest.raises(SecretNotFound):
        await s.get_secret(v, who, "gone", None)
    with pytest.raises(VaultConflict):  # the name stays reserved while recoverable
        await s.set_secret(v, who, "gone", "y", PLAIN)
    assert [d.latest.name for d in (await s.list_deleted(v, who, token=None, limit=None))[0]] == ["gone"]
    await s.recover(v, who, "gone")
    assert (await s.get_secret(v, who, "gone", None)).value == "x"
    await s.delete_secret(v, who, "gone")
    with pytest.raises(Forbidden):  # the owner bundle has no purge
        await s.purge(v, who, "gone")
    await s.grant(env.tenant.id, v.name, who, [m.PURGE], actor="test")
    await s.purge(v, who, "gone")
    with pytest.raises(SecretNotFound):
        await s.get_deleted(v, who, "gone")
    await s.set_secret(v, who, "gone", "new life", PLAIN)  # the name is free again


async def test_retention_ends_in_automatic_purge(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    await s.set_secret(v, who, "old", "x", PLAIN)
    await s.delete_secret(v, who, "old")
    env.clock.advance(90 * 86400 - 1)
    assert await s.purge_expired() == 0
    await s.get_deleted(v, who, "old")
    env.clock.advance(1)
    with pytest.raises(SecretNotFound):  # reads treat it as gone at once …
        await s.recover(v, who, "old")
    assert await s.purge_expired() == 1  # … and the sweep removes it


async def test_g06_purge_protection(env: Env) -> None:
    s, who = env.service, env.owner
    with pytest.raises(BadParameter):
        await s.create_vault(env.tenant.id, "short", actor="t", retention_days=6)
    vault = await s.create_vault(env.tenant.id, "locked", actor="t", retention_days=7, purge_protection=True,
                                 owner=who)
    await s.grant(env.tenant.id, "locked", who, [m.PURGE], actor="t")
    await s.set_secret(vault, who, "a", "x", PLAIN)
    await s.delete_secret(vault, who, "a")
    with pytest.raises(Forbidden):
        await s.purge(vault, who, "a")
    with pytest.raises(VaultConflict):
        await s.update_vault(env.tenant.id, "locked", actor="t", purge_protection=False)
    await s.recover(vault, who, "a")


async def test_backup_and_restore_keep_every_version(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    one = await s.set_secret(v, who, "bk", "1", m.SecretAttributes(tags={"k": "v"}))
    two = await s.set_secret(v, who, "bk", "2", PLAIN)
    blob = await s.backup(v, who, "bk")
    with pytest.raises(VaultConflict):
        await s.restore(v, who, blob)  # the name exists
    await s.delete_secret(v, who, "bk")
    with pytest.raises(VaultConflict):
        await s.restore(v, who, blob)  # … even deleted
    await s.grant(env.tenant.id, v.name, who, [m.PURGE], actor="t")
    await s.purge(v, who, "bk")
    restored = await s.restore(v, who, blob)
    assert restored.version == two.version
    assert (await s.get_secret(v, who, "bk", one.version)).value == "1"
    assert (await s.get_secret(v, who, "bk", one.version)).version.attributes.tags == {"k": "v"}
    other = await s.create_vault(env.tenant.id, "other", actor="t", owner=who)
    await s.restore(other, who, blob)  # another vault of the same tenant
    assert (await s.get_secret(other, who, "bk", None)).value == "2"
    with pytest.raises(BadParameter):
        await s.restore(v, who, blob[:-8] + "AAAAAAAA")


async def test_g04_no_grant_means_not_found_and_role_checks_come_first(env: Env) -> None:
    s, v = env.service, env.vault
    await s.set_secret(v, env.owner, "exists", "x", PLAIN)
    stranger = env.principal()
    for name in ("exists", "does-not-exist"):
        with pytest.raises(SecretNotFound) as caught:
            await s.get_secret(v, stranger, name, None)
        assert str(caught.value) == f"no secret named {name} in this vault"
    with pytest.raises(Forbidden):
        await s.list_secrets(v, stranger, token=None, limit=None)
    reader = env.principal()
    await s.grant(env.tenant.id, v.name, reader, ["Secrets.Reader"], actor="t")
    for name in ("exists", "does-not-exist"):  # 403 either way: the role is checked before the lookup
        with pytest.raises(Forbidden):
            await s.set_secret(v, reader, name, "y", PLAIN)
    other_tenant = m.Principal(tenant_id="another", object_id=env.owner.object_id, client_id=env.owner.client_id)
    with pytest.raises(SecretNotFound):
        await s.get_secret(v, other_tenant, "exists", None)


async def test_g04_list_shows_only_authorized_names(env: Env) -> None:
    s, v = env.service, env.vault
    for name in ("app", "app-admin", "db"):
        await s.set_secret(v, env.owner, name, "x", PLAIN)
    narrow = env.principal()
    await s.grant(env.tenant.id, v.name, narrow, [m.LIST, m.GET], actor="t", secret="app")
    page, _ = await s.list_secrets(v, narrow, token=None, limit=None)
    assert [p.name for p in page] == ["app"]
    assert (await s.get_secret(v, narrow, "APP", None)).value == "x"
    with pytest.raises(SecretNotFound):
        await s.get_secret(v, narrow, "app-admin", None)


async def test_grants_are_idempotent_validated_and_revocable(env: Env) -> None:
    s, v = env.service, env.vault
    who = env.principal()
    first = await s.grant(env.tenant.id, v.name, who, ["Secrets.Reader"], actor="t")
    again = await s.grant(env.tenant.id, v.name, who, [m.GET], actor="t")
    assert again[0].id == next(g.id for g in first if g.role == m.GET)
    with pytest.raises(BadParameter):
        await s.grant(env.tenant.id, v.name, who, ["Secrets.Everything"], actor="t")
    with pytest.raises(VaultNotFound):
        await s.grant("another-tenant", v.name, who, [m.GET], actor="t")
    for g in first:
        await s.revoke(env.tenant.id, v.name, g.id, actor="t")
    with pytest.raises(SecretNotFound):
        await s.revoke(env.tenant.id, v.name, first[0].id, actor="t")


async def test_vault_names_are_unique_across_tenants(env: Env) -> None:
    with pytest.raises(VaultConflict):
        await env.service.create_vault("another-tenant-id", "payments", actor="t")


async def test_key_rotation_rewraps_without_touching_values(env: Env) -> None:
    s, v, who = env.service, env.vault, env.owner
    for i in range(5):
        await s.set_secret(v, who, f"k{i}", f"value-{i}", PLAIN)
    before = await env.store.all_versions(v.id, "k0")
    result = await s.rotate_key(env.tenant.id, v.name, actor="t")
    assert result["rewrapped"] == 5 and result["retired_keys"] == 1
    after = await env.store.all_versions(v.id, "k0")
    assert after[0].ciphertext == before[0].ciphertext and after[0].wrapped_dek != before[0].wrapped_dek
    assert after[0].key_id == result["key_id"]
    assert [k.id for k in await env.store.vault_keys(v.id)] == [result["key_id"]]
    for i in range(5):
        assert (await s.get_secret(v, who, f"k{i}", None)).value == f"value-{i}"
