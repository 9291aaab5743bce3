"""What the vault needs from storage (`keyless.store.vault` implements it).

Each write is one transaction with its audit event. Methods that act on a named secret take its
case-insensitive key (`names.secret_key`); the display name is stored once, when first set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from keyless.domain.model import AuditEvent
from keyless.vault.model import (
    DeletedSecret,
    SealedVersion,
    SecretAttributes,
    SecretVersion,
    Vault,
    VaultGrant,
    VaultKey,
)


@dataclass(frozen=True)
class WrappedKey:
    """One version's wrapped data key, as key rotation sees it."""

    secret_id: str
    name_key: str
    version: str
    key_id: str
    wrapped_dek: bytes


class VaultStore(Protocol):
    async def get_vault(self, name: str) -> Vault | None: ...
    async def list_vaults(self, tenant_id: str) -> Sequence[Vault]: ...
    async def create_vault(self, vault: Vault, key: VaultKey, grants: Sequence[VaultGrant],
                           audit: AuditEvent) -> None:
        """Raises `UniqueViolation` when the name is taken (in any tenant: names are DNS labels)."""
        ...

    async def update_vault(self, vault: Vault, audit: AuditEvent) -> None: ...
    async def vault_keys(self, vault_id: str) -> Sequence[VaultKey]:
        """Oldest first; the last one is the active key."""
        ...

    async def grants(self, vault_id: str, principal_object_id: str | None = None) -> Sequence[VaultGrant]: ...
    async def add_grants(self, grants: Sequence[VaultGrant], audit: AuditEvent) -> Sequence[VaultGrant]:
        """Adds the grants not already present; returns what the vault now holds of them."""
        ...

    async def remove_grant(self, vault_id: str, grant_id: str, audit: AuditEvent) -> bool: ...

    async def add_version(self, vault_id: str, name: str, sealed: SealedVersion, *, if_match: str | None,
                          audit: AuditEvent) -> None:
        """Append a version, creating the secret on first use. Raises `vault.errors.VaultConflict` when the
        secret is soft-deleted, `PreconditionFailed` when `if_match` is not the latest version."""
        ...

    async def get_version(self, vault_id: str, name_key: str, version: str | None) -> SealedVersion | None:
        """A version of a live (not deleted) secret; the latest when `version` is None."""
        ...

    async def update_version(self, vault_id: str, name_key: str, version: str | None, attributes: SecretAttributes,
                             *, updated_at: float, if_match: str | None, audit: AuditEvent) -> SecretVersion | None: ...

    async def list_secrets(self, vault_id: str, *, after: str | None, limit: int,
                           only: frozenset[str] | None) -> Sequence[SecretVersion]:
        """Live secrets by name key, each as its latest version; `only` restricts to those names."""
        ...

    async def list_versions(self, vault_id: str, name_key: str, *, after: int | None,
                            limit: int) -> Sequence[tuple[int, SecretVersion]] | None:
        """(sequence number, version) oldest first; None when the secret does not exist (or is deleted)."""
        ...

    async def delete_secret(self, vault_id: str, name_key: str, *, at: float, purge_at: float,
                            audit: AuditEvent) -> DeletedSecret | None: ...
    async def get_deleted(self, vault_id: str, name_key: str, now: float) -> DeletedSecret | None: ...
    async def list_deleted(self, vault_id: str, *, after: str | None, limit: int, only: frozenset[str] | None,
                           now: float) -> Sequence[DeletedSecret]: ...
    async def recover(self, vault_id: str, name_key: str, now: float, audit: AuditEvent) -> SecretVersion | None: ...
    async def purge(self, vault_id: str, name_key: str, now: float, audit: AuditEvent) -> bool: ...
    async def purge_expired(self, now: float) -> int:
        """Remove soft-deleted secrets whose retention has ended; returns how many."""
        ...

    async def all_versions(self, vault_id: str, name_key: str) -> Sequence[SealedVersion]: ...
    async def restore(self, vault_id: str, name: str, versions: Sequence[SealedVersion], audit: AuditEvent) -> None:
        """Raises `vault.errors.VaultConflict` when a secret of that name exists, live or deleted."""
        ...

    async def add_vault_key(self, key: VaultKey, audit: AuditEvent) -> None: ...
    async def wrapped_keys(self, vault_id: str, *, not_key: str, limit: int) -> Sequence[WrappedKey]: ...
    async def rewrap(self, vault_id: str, updates: Sequence[tuple[WrappedKey, str, bytes]]) -> int:
        """Replace wrapped data keys (old row, new key id, new wrapping) where the row is unchanged."""
        ...

    async def drop_unused_keys(self, vault_id: str, keep: str) -> int: ...
    async def record_audits(self, events: Sequence[AuditEvent]) -> None: ...
