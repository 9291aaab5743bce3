"""Table definitions. Every schema change is an Alembic migration under `migrations/versions/`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

GUID = String(36)

tenants = Table(
    "tenants",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("signing_alg", String(16), nullable=False),
    Column("token_lifetime", Integer, nullable=False),
    Column("max_secret_lifetime", Integer, nullable=False),
    Column("default_secret_lifetime", Integer, nullable=False),
    Column("assertion_audience", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("max_certificate_lifetime", Integer, nullable=False, server_default=str(3 * 365 * 86400)),
)

applications = Table(
    "applications",
    metadata,
    Column("client_id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("object_id", GUID, nullable=False, unique=True),
    Column("display_name", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("identifier_uri", String(512), nullable=True),
    Column("open_to_tenant", Boolean, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("managed_resource_id", String(512), nullable=True),  # managed identities only (migration 0005)
    UniqueConstraint("tenant_id", "identifier_uri", name="uq_applications_tenant_identifier"),
    Index("ix_applications_tenant", "tenant_id"),
    Index("ix_applications_tenant_client", "tenant_id", "client_id"),  # the posture report's pages (0016)
)

app_roles = Table(
    "app_roles",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), nullable=False),
    Column("value", String(128), nullable=False),
    Column("description", String(512), nullable=False),
    Column("enabled", Boolean, nullable=False),
    UniqueConstraint("client_id", "value", name="uq_app_roles_client_value"),
)

client_secrets = Table(
    "client_secrets",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), nullable=False),
    Column("hint", String(8), nullable=False),
    Column("digest", LargeBinary(64), nullable=False),
    Column("pepper_id", String(16), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("last_used_at", Double, nullable=True),
    Column("last_used_from", String(64), nullable=True),  # source address of that sign-in (0014)
    Column("revoked_at", Double, nullable=True),
    Index("ix_client_secrets_client", "client_id"),
    Index("ix_client_secrets_digest", "digest"),  # a presented secret's keyed-hash lookup (leaks, 0012)
)

certificates = Table(
    # Certificate credentials of every owner kind: an application's uploaded or CA-issued ones, a
    # host's CA-issued ones (used for the identities the host may act for). Migration 0010.
    "certificates",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("owner_kind", String(16), nullable=False),  # application | host
    Column("owner_id", GUID, nullable=False),  # the application's client id, or the host's id
    Column("x5t", String(64), nullable=False),
    Column("x5t_s256", String(64), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("subject", String(512), nullable=False),
    Column("key_type", String(16), nullable=False),
    Column("key_size", Integer, nullable=False),
    Column("not_before", Double, nullable=False),
    Column("not_after", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("last_used_at", Double, nullable=True),
    Column("last_used_from", String(64), nullable=True),
    Column("revoked_at", Double, nullable=True),
    # Whether the installation's CA issued it (its signature checked once), and the x5t#S256 of the CA
    # certificate that verdict is about; NULL until first checked (migration 0017, `store.posture`).
    Column("ca_issued", Boolean, nullable=True),
    Column("ca_checked", String(64), nullable=True),
    Index("ix_certificates_owner", "owner_kind", "owner_id"),
)

one_time_uses = Table(
    "one_time_uses",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("owner", String(64), primary_key=True),
    Column("value", String(256), primary_key=True),
    Column("expires_at", Double, nullable=False),
    Index("ix_one_time_uses_expires", "expires_at"),
)

# SQLite only: the values a server decided in its memory, appended (no unique key) before it answered
# (`keyless.store.one_time_memory`, migration 0018).
one_time_log = Table(
    "one_time_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", LargeBinary(16), nullable=False),
    Column("expires_at", Double, nullable=False),
    Index("ix_one_time_log_expires", "expires_at"),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("principal_object_id", GUID, nullable=False),
    Column("principal_client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), nullable=False),
    Column("resource_client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), nullable=False),
    Column("role_id", GUID, ForeignKey("app_roles.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("principal_object_id", "role_id", name="uq_role_assignments_principal_role"),
    Index("ix_role_assignments_lookup", "principal_object_id", "resource_client_id"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("sealed_private", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("activates_at", Double, nullable=False),
    Column("retire_at", Double, nullable=True),
    Index("ix_signing_keys_tenant", "tenant_id"),
)

signin_log = Table(
    "signin_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Double, nullable=False),
    Column("tenant_id", GUID, nullable=False),
    Column("client_id", String(64), nullable=True),
    Column("credential_id", String(64), nullable=True),
    Column("credential_type", String(16), nullable=True),
    Column("resource", String(512), nullable=True),
    Column("result", String(8), nullable=False),
    Column("error", String(64), nullable=True),
    Column("detail", String(256), nullable=True),
    Column("source", String(64), nullable=True),
    Column("token_id", String(64), nullable=True),
    Column("grant_type", String(64), nullable=True),
    Column("auth_method", String(32), nullable=True),
    Index("ix_signin_log_tenant_time", "tenant_id", "time"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Double, nullable=False),
    Column("tenant_id", GUID, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("details", Text, nullable=False),
    Index("ix_audit_log_tenant_time", "tenant_id", "time"),
)

# -- managed identities and hosts (migration 0005) ------------------------------------------------

hosts = Table(
    "hosts",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("system_client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("enrolled_at", Double, nullable=True),
    Column("join_digest", LargeBinary(64), nullable=True),
    Column("join_expires_at", Double, nullable=True),
    UniqueConstraint("tenant_id", "name", name="uq_hosts_tenant_name"),
)

managed_identities = Table(
    "managed_identities",
    metadata,
    Column("client_id", GUID, ForeignKey("applications.client_id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("resource_id", String(512), nullable=False),
    Column("host_id", GUID, nullable=True),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("tenant_id", "kind", "name", name="uq_managed_identities_tenant_kind_name"),
)

identity_assignments = Table(
    "identity_assignments",
    metadata,
    Column("host_id", GUID, ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True),
    Column("identity_client_id", GUID, ForeignKey("managed_identities.client_id", ondelete="CASCADE"),
           primary_key=True),
    Column("created_at", Double, nullable=False),
    Index("ix_identity_assignments_identity", "identity_client_id"),
)

workload_bindings = Table(
    "workload_bindings",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("host_id", GUID, ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
    Column("identity_client_id", GUID, ForeignKey("managed_identities.client_id", ondelete="CASCADE"),
           nullable=False),
    Column("uid", Integer, nullable=True),
    Column("gid", Integer, nullable=True),
    Column("exe", String(1024), nullable=True),
    Column("unit", String(256), nullable=True),
    Column("created_at", Double, nullable=False),
    Index("ix_workload_bindings_host", "host_id"),
)

# Federated identity credentials (issue 5). The owner is named by kind and id, not by a foreign key,
# so user-assigned identities can own them too; deleting an owner deletes its rows explicitly.
federated_credentials = Table(
    "federated_credentials",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    Column("issuer", String(512), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("subject_is_pattern", Boolean, nullable=False),
    Column("audience", String(512), nullable=False),
    Column("claims", Text, nullable=False),
    Column("algorithms", String(128), nullable=False),
    Column("replay", String(16), nullable=False),
    Column("max_token_lifetime", Integer, nullable=False),
    Column("description", String(512), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double, nullable=True),  # 0014
    Column("last_used_from", String(64), nullable=True),
    UniqueConstraint("tenant_id", "owner_type", "owner_id", "name", name="uq_federated_credentials_owner_name"),
    Index("ix_federated_credentials_owner", "tenant_id", "owner_type", "owner_id"),
)

# Audiences an owner may request an outbound identity token for (issue 5 scope 4): deny by default.
identity_token_audiences = Table(
    "identity_token_audiences",
    metadata,
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("owner_type", String(16), primary_key=True),
    Column("owner_id", String(64), primary_key=True),
    Column("audience", String(512), primary_key=True),
    Column("created_at", Double, nullable=False),
)

# Settings of the whole installation that every replica must share (migration 0007): one row per name.
installation = Table(
    "installation",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# Who does a piece of background work until when (migration 0008): one replica at a time.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Double, nullable=False),
)

# Failed-authentication budgets shared by the replicas (migration 0009; keyless.store.failures).
failure_buckets = Table(
    "failure_buckets",
    metadata,
    Column("key", String(320), primary_key=True),
    Column("tokens", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_failure_buckets_updated_at", "updated_at"),
)

# Web console sessions (migration 0013; keyless.store.console): in the database so every replica
# agrees on them and sign-out ends one everywhere. `id` is the SHA-256 of the cookie's value, never
# the value itself, so a copy of the table opens no session.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", GUID, nullable=False),
    Column("client_id", GUID, nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("roles", String(256), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("last_seen_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("ended_at", Double, nullable=True),
    # The credential the session signed in with (its id and kind; never a value), for audit records.
    Column("credential_id", String(64), nullable=True),
    Column("credential_type", String(16), nullable=True),
    Index("ix_console_sessions_expires_at", "expires_at"),
)

# Credential policies (migration 0015; keyless.store.policies): the tenant's default (client_id "")
# and per-application overrides, each a JSON document (keyless.domain.policies.policy_to_json).
credential_policies = Table(
    "credential_policies",
    metadata,
    Column("tenant_id", GUID, ForeignKey("tenants.id"), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)
