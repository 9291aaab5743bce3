"""Grant matching is exact per secret name (catalog G08): no prefix, glob or case surprises."""

from __future__ import annotations

from keyless.vault import model as m
from keyless.vault.access import Access


def grant(role: str, secret: str | None = None) -> m.VaultGrant:
    return m.VaultGrant(id="g", vault_id="v", principal_object_id="p", principal_client_id="c", role=role,
                        secret_name=secret, created_at=0)


def test_g08_a_grant_on_app_says_nothing_about_app_admin() -> None:
    access = Access.of([grant(m.GET, "app")])
    assert access.roles_for("app") == {m.GET}
    assert not access.sees("app-admin")
    assert not access.sees("ap")
    assert not access.sees("app*")


def test_vault_scope_covers_every_secret_and_adds_to_secret_scope() -> None:
    access = Access.of([grant(m.LIST), grant(m.GET, "db")])
    assert access.roles_for("anything") == {m.LIST}
    assert access.roles_for("db") == {m.LIST, m.GET}
    assert access.secrets_with(m.LIST) is None
    assert access.secrets_with(m.GET) == {"db"}


def test_no_grants_sees_nothing() -> None:
    access = Access.of([])
    assert access.none and not access.sees("x") and access.secrets_with(m.LIST) == frozenset()
