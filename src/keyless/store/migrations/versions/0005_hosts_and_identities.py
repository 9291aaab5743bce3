"""hosts, managed identities (system- and user-assigned), host certificates, identity assignments,
workload bindings; applications.managed_resource_id

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GUID = sa.String(length=36)


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("managed_resource_id", sa.String(length=512), nullable=True))
    op.create_table(
        "hosts",
        sa.Column("id", GUID, nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("system_client_id", GUID, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("enrolled_at", sa.Double(), nullable=True),
        sa.Column("join_digest", sa.LargeBinary(length=64), nullable=True),
        sa.Column("join_expires_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_hosts_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["system_client_id"], ["applications.client_id"],
                                name=op.f("fk_hosts_system_client_id_applications"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_hosts_tenant_name"),
    )
    op.create_table(
        "managed_identities",
        sa.Column("client_id", GUID, nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("resource_id", sa.String(length=512), nullable=False),
        sa.Column("host_id", GUID, nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["applications.client_id"],
                                name=op.f("fk_managed_identities_client_id_applications"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_managed_identities_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_managed_identities")),
        sa.UniqueConstraint("tenant_id", "kind", "name", name="uq_managed_identities_tenant_kind_name"),
    )
    op.create_table(
        "host_certificates",
        sa.Column("id", GUID, nullable=False),
        sa.Column("host_id", GUID, nullable=False),
        sa.Column("x5t", sa.String(length=64), nullable=False),
        sa.Column("x5t_s256", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("key_size", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Double(), nullable=False),
        sa.Column("not_after", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_host_certificates_host_id_hosts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_certificates")),
    )
    with op.batch_alter_table("host_certificates") as batch:
        batch.create_index("ix_host_certificates_host", ["host_id"], unique=False)
    op.create_table(
        "identity_assignments",
        sa.Column("host_id", GUID, nullable=False),
        sa.Column("identity_client_id", GUID, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_identity_assignments_host_id_hosts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["identity_client_id"], ["managed_identities.client_id"],
                                name=op.f("fk_identity_assignments_identity_client_id_managed_identities"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("host_id", "identity_client_id", name=op.f("pk_identity_assignments")),
    )
    with op.batch_alter_table("identity_assignments") as batch:
        batch.create_index("ix_identity_assignments_identity", ["identity_client_id"], unique=False)
    op.create_table(
        "workload_bindings",
        sa.Column("id", GUID, nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        sa.Column("host_id", GUID, nullable=False),
        sa.Column("identity_client_id", GUID, nullable=False),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("gid", sa.Integer(), nullable=True),
        sa.Column("exe", sa.String(length=1024), nullable=True),
        sa.Column("unit", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_workload_bindings_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_workload_bindings_host_id_hosts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["identity_client_id"], ["managed_identities.client_id"],
                                name=op.f("fk_workload_bindings_identity_client_id_managed_identities"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workload_bindings")),
    )
    with op.batch_alter_table("workload_bindings") as batch:
        batch.create_index("ix_workload_bindings_host", ["host_id"], unique=False)


def downgrade() -> None:
    op.drop_table("workload_bindings")
    op.drop_table("identity_assignments")
    op.drop_table("host_certificates")
    op.drop_table("managed_identities")
    op.drop_table("hosts")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("managed_resource_id")
