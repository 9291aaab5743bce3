"""Who may do what in a vault: grants at vault scope or on one secret, matched exactly (catalog G08:
no globs, no prefixes — a grant on `app` says nothing about `app-admin`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keyless.vault.model import VaultGrant


@dataclass(frozen=True)
class Access:
    """A principal's grants in one vault, indexed for the per-request check."""

    vault_roles: frozenset[str]
    secret_roles: dict[str, frozenset[str]]

    @classmethod
    def of(cls, grants: Iterable[VaultGrant]) -> Access:
        vault: set[str] = set()
        per_secret: dict[str, set[str]] = {}
        for g in grants:
            if g.secret_name is None:
                vault.add(g.role)
            else:
                per_secret.setdefault(g.secret_name, set()).add(g.role)
        return cls(frozenset(vault), {k: frozenset(v) for k, v in per_secret.items()})

    @property
    def none(self) -> bool:
        return not self.vault_roles and not self.secret_roles

    def roles_for(self, name_key: str) -> frozenset[str]:
        extra = self.secret_roles.get(name_key)
        return self.vault_roles | extra if extra else self.vault_roles

    def sees(self, name_key: str) -> bool:
        """A secret the caller holds no role on does not exist for it (404, catalog G04)."""
        return bool(self.roles_for(name_key))

    def secrets_with(self, role: str) -> frozenset[str] | None:
        """Names the caller may use `role` on; None means every secret (a vault-scope grant)."""
        if role in self.vault_roles:
            return None
        return frozenset(name for name, roles in self.secret_roles.items() if role in roles)
