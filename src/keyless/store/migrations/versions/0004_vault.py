"""secrets vault: vaults, vault keys, grants, secrets and their encrypted versions

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vaults",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=24), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("purge_protection", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_vaults_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vaults")),
        sa.UniqueConstraint("name", name=op.f("uq_vaults_name")),
    )
    op.create_index("ix_vaults_tenant", "vaults", ["tenant_id"])
    op.create_table(
        "vault_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name=op.f("fk_vault_keys_vault_id_vaults"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_keys")),
    )
    op.create_index("ix_vault_keys_vault", "vault_keys", ["vault_id"])
    op.create_table(
        "vault_grants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("principal_object_id", sa.String(length=36), nullable=False),
        sa.Column("principal_client_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("secret_name", sa.String(length=127), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name=op.f("fk_vault_grants_vault_id_vaults"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_grants")),
        sa.UniqueConstraint("vault_id", "principal_object_id", "secret_name", "role", name="uq_vault_grants_grant"),
    )
    op.create_table(
        "vault_secrets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vault_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("name_key", sa.String(length=127), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("deleted_at", sa.Double(), nullable=True),
        sa.Column("purge_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name=op.f("fk_vault_secrets_vault_id_vaults"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_secrets")),
        sa.UniqueConstraint("vault_id", "name_key", name="uq_vault_secrets_name"),
    )
    op.create_index("ix_vault_secrets_purge", "vault_secrets", ["purge_at"])
    op.create_table(
        "vault_versions",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("not_before", sa.Double(), nullable=True),
        sa.Column("expires", sa.Double(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["secret_id"], ["vault_secrets.id"],
                                name=op.f("fk_vault_versions_secret_id_vault_secrets"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["key_id"], ["vault_keys.id"], name=op.f("fk_vault_versions_key_id_vault_keys")),
        sa.PrimaryKeyConstraint("secret_id", "version", name=op.f("pk_vault_versions")),
        sa.UniqueConstraint("secret_id", "seq", name="uq_vault_versions_seq"),
    )
    op.create_index("ix_vault_versions_key", "vault_versions", ["key_id"])


def downgrade() -> None:
    op.drop_table("vault_versions")
    op.drop_table("vault_secrets")
    op.drop_table("vault_grants")
    op.drop_table("vault_keys")
    op.drop_table("vaults")
