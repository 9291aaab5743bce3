"""Backups are bound to the vault they came from (issue 11 item 7, `keyless.vault.backup`): a role that
may only back a secret up never becomes its plaintext in a vault the caller controls."""

from __future__ import annotations

import json

import pytest

from keyless.vault import envelope
from keyless.vault import model as m
from keyless.vault.backup import FOREIGN, OLD_FORMAT, ForeignBackup
from keyless.vault.errors import BadParameter, SecretNotFound
from tests.unit.vault.conftest import Env

PLAIN = m.SecretAttributes()


async def _backup_only_attacker(env: Env) -> tuple[m.Principal, str, m.Vault]:
    """A principal with Secrets.Backup on one secret of `payments`, owning a vault of its own."""
    s = env.service
    await s.set_secret(env.vault, env.owner, "db-password", "the-plaintext", PLAIN)
    attacker = env.principal()
    await s.grant(env.tenant.id, env.vault.name, attacker, [m.BACKUP], actor="t", secret="db-password")
    mine = await s.create_vault(env.tenant.id, "attacker-owned", actor="t", owner=attacker)
    blob = await s.backup(env.vault, attacker, "db-password")
    return attacker, blob, mine


async def test_backup_only_role_cannot_restore_into_a_vault_the_caller_controls(env: Env) -> None:
    attacker, blob, mine = await _backup_only_attacker(env)
    with pytest.raises(ForeignBackup) as refused:
        await env.service.restore(mine, attacker, blob)
    assert (refused.value.status, refused.value.code, refused.value.problem, str(refused.value)) == (
        403, "Forbidden", "vault_backup_from_another_vault", FOREIGN)
    with pytest.raises(SecretNotFound):  # the refused restore stored nothing
        await env.service.get_secret(mine, attacker, "db-password", None)


@pytest.mark.parametrize("revoked", [m.BACKUP, m.GET])
async def test_the_origin_roles_are_checked_again_at_restore_time(env: Env, revoked: str) -> None:
    s = env.service
    attacker, blob, mine = await _backup_only_attacker(env)
    await s.grant(env.tenant.id, env.vault.name, attacker, [m.GET], actor="t", secret="db-password")
    grant = next(g for g in await s.list_grants(env.tenant.id, env.vault.name)
                 if g.principal_object_id == attacker.object_id and g.role == revoked)
    await s.revoke(env.tenant.id, env.vault.name, grant.id, actor="t")
    with pytest.raises(ForeignBackup):  # held both when the blob was made, not any more
        await s.restore(mine, attacker, blob)


async def test_a_caller_who_may_read_and_back_up_the_origin_may_restore_into_another_vault(env: Env) -> None:
    s = env.service
    await s.set_secret(env.vault, env.owner, "api-key", "v1", PLAIN)
    blob = await s.backup(env.vault, env.owner, "api-key")
    other = await s.create_vault(env.tenant.id, "other", actor="t", owner=env.owner)
    restored = await s.restore(other, env.owner, blob)
    assert (await s.get_secret(other, env.owner, "api-key", restored.version)).value == "v1"


async def test_restore_into_the_origin_vault_needs_only_restore_there(env: Env) -> None:
    s = env.service
    await s.set_secret(env.vault, env.owner, "cert", "pem", PLAIN)
    blob = await s.backup(env.vault, env.owner, "cert")
    await s.grant(env.tenant.id, env.vault.name, env.owner, [m.PURGE], actor="t")
    await s.delete_secret(env.vault, env.owner, "cert")
    await s.purge(env.vault, env.owner, "cert")
    restorer = env.principal()
    await s.grant(env.tenant.id, env.vault.name, restorer, [m.RESTORE], actor="t")
    assert (await s.restore(env.vault, restorer, blob)).name == "cert"


async def test_a_backup_without_its_origin_format_1_is_refused(env: Env) -> None:
    old = json.dumps({"format": 1, "name": "x", "versions": [{"version": "0" * 32, "value": "v"}]}).encode()
    blob = envelope.seal_backup(env.kek, env.tenant.id, old)
    with pytest.raises(BadParameter) as refused:
        await env.service.restore(env.vault, env.owner, blob)
    assert str(refused.value) == OLD_FORMAT
