"""Leak records (migration 0012, on the shared `metadata`): where a secret was reported seen, by whom,
and whether that report revoked it. One row per (secret, location): a repeated report is a no-op."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, ForeignKey, Index, String, Table, UniqueConstraint

from keyless.store.tables import GUID, metadata

leaks = Table(
    "leaks",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), nullable=False),
    Column("secret_id", GUID, ForeignKey("client_secrets.id", ondelete="CASCADE"), nullable=False),
    Column("hint", String(8), nullable=False),
    Column("location", String(1024), nullable=False),
    Column("source", String(64), nullable=False),
    Column("reporter", String(128), nullable=False),
    Column("reported_at", Double, nullable=False),
    Column("status_before", String(16), nullable=False),
    Column("revoked", Boolean, nullable=False),
    UniqueConstraint("secret_id", "location", name="uq_leaks_secret_location"),
    Index("ix_leaks_tenant_time", "tenant_id", "reported_at"),
)
