"""Vault objects. Times are Unix epoch seconds (float), as in `keyless.domain.model`."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

# Data-plane roles, granted per vault or per secret. One role per operation, as Key Vault's access
# policies have one permission per operation, so least privilege is expressible.
GET = "Secrets.Get"
LIST = "Secrets.List"
SET = "Secrets.Set"
DELETE = "Secrets.Delete"
RECOVER = "Secrets.Recover"
BACKUP = "Secrets.Backup"
RESTORE = "Secrets.Restore"
PURGE = "Secrets.Purge"
ROLES = (GET, LIST, SET, DELETE, RECOVER, BACKUP, RESTORE, PURGE)
# Named bundles a grant may use instead of single roles; they expand when granted, so a later change
# to a bundle never widens existing grants silently. Purge is in no bundle: it destroys data.
BUNDLES = MappingProxyType({
    "Secrets.Reader": (GET, LIST),
    "Secrets.Officer": (GET, LIST, SET, DELETE, RECOVER, BACKUP, RESTORE),
})

MIN_RETENTION_DAYS = 7
MAX_RETENTION_DAYS = 90
DEFAULT_RETENTION_DAYS = 90
MAX_VALUE_BYTES = 25 * 1024  # Key Vault's limit for a secret value


@dataclass(frozen=True)
class Vault:
    id: str
    tenant_id: str
    name: str  # lower-case, globally unique: it is a DNS label in `{name}.vault.{domain}`
    retention_days: int
    purge_protection: bool
    created_at: float


@dataclass(frozen=True)
class VaultKey:
    """A vault's key-encryption key, sealed under the server KEK. The newest one wraps new data keys;
    older ones stay until rotation has re-wrapped every data key they protect."""

    id: str
    vault_id: str
    sealed: bytes = field(repr=False)
    created_at: float


@dataclass(frozen=True)
class VaultGrant:
    id: str
    vault_id: str
    principal_object_id: str
    principal_client_id: str
    role: str
    secret_name: str | None  # None: the whole vault; else one secret (lower-case), matched exactly
    created_at: float


@dataclass(frozen=True)
class SecretAttributes:
    """The mutable part of a version: everything but its value."""

    enabled: bool = True
    not_before: float | None = None
    expires: float | None = None
    content_type: str | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class SecretVersion:
    name: str  # as first set (display case); lookups are case-insensitive
    version: str
    attributes: SecretAttributes
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class SealedVersion:
    """A version as stored: the value sealed under a fresh data key, the data key wrapped by a vault key."""

    version: SecretVersion
    key_id: str
    wrapped_dek: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True)
class SecretValue:
    """A version with its plaintext value, for the one response that returns it."""

    version: SecretVersion
    value: str = field(repr=False)


@dataclass(frozen=True)
class DeletedSecret:
    latest: SecretVersion
    deleted_at: float
    scheduled_purge_at: float


RecoveryLevel = Literal["Recoverable+Purgeable", "Recoverable"]


def recovery_level(vault: Vault) -> RecoveryLevel:
    return "Recoverable" if vault.purge_protection else "Recoverable+Purgeable"


@dataclass(frozen=True)
class Principal:
    """Who is calling, from a verified access token of the vault's tenant."""

    tenant_id: str
    object_id: str
    client_id: str
