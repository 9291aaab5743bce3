"""Vault tables (on the shared `metadata`; every change is an Alembic migration).

Values are stored only as AES-GCM ciphertext under a per-version data key, which is stored only
wrapped by a vault key, which is stored only sealed under the server KEK (`keyless.vault.envelope`).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from keyless.store.tables import GUID, metadata

vaults = Table(
    "vaults",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(24), nullable=False, unique=True),
    Column("retention_days", Integer, nullable=False),
    Column("purge_protection", Boolean, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("ix_vaults_tenant", "tenant_id"),
)

vault_keys = Table(
    "vault_keys",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("vault_id", GUID, ForeignKey("vaults.id", ondelete="CASCADE"), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("ix_vault_keys_vault", "vault_id"),
)

vault_grants = Table(
    "vault_grants",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("vault_id", GUID, ForeignKey("vaults.id", ondelete="CASCADE"), nullable=False),
    Column("principal_object_id", GUID, nullable=False),
    Column("principal_client_id", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("secret_name", String(127), nullable=False),  # '' = the whole vault (NULLs never collide in UNIQUE)
    Column("created_at", Double, nullable=False),
    UniqueConstraint("vault_id", "principal_object_id", "secret_name", "role", name="uq_vault_grants_grant"),
)

vault_secrets = Table(
    "vault_secrets",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("vault_id", GUID, ForeignKey("vaults.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(127), nullable=False),
    Column("name_key", String(127), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("deleted_at", Double, nullable=True),
    Column("purge_at", Double, nullable=True),
    UniqueConstraint("vault_id", "name_key", name="uq_vault_secrets_name"),
    Index("ix_vault_secrets_purge", "purge_at"),
)

vault_versions = Table(
    "vault_versions",
    metadata,
    Column("secret_id", GUID, ForeignKey("vault_secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("not_before", Double, nullable=True),
    Column("expires", Double, nullable=True),
    Column("content_type", String(255), nullable=True),
    Column("tags", Text, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("key_id", GUID, ForeignKey("vault_keys.id"), nullable=False),
    Column("wrapped_dek", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    UniqueConstraint("secret_id", "seq", name="uq_vault_versions_seq"),
    Index("ix_vault_versions_key", "key_id"),
)
