"""federated identity credentials; audiences allowed for outbound identity tokens

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federated_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("subject_is_pattern", sa.Boolean(), nullable=False),
        sa.Column("audience", sa.String(length=512), nullable=False),
        sa.Column("claims", sa.Text(), nullable=False),
        sa.Column("algorithms", sa.String(length=128), nullable=False),
        sa.Column("replay", sa.String(length=16), nullable=False),
        sa.Column("max_token_lifetime", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_federated_credentials_tenant_id_tenants"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federated_credentials")),
        sa.UniqueConstraint("tenant_id", "owner_type", "owner_id", "name", name="uq_federated_credentials_owner_name"),
    )
    with op.batch_alter_table("federated_credentials") as batch:
        batch.create_index("ix_federated_credentials_owner", ["tenant_id", "owner_type", "owner_id"], unique=False)
    op.create_table(
        "identity_token_audiences",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_identity_token_audiences_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "owner_type", "owner_id", "audience",
                                name=op.f("pk_identity_token_audiences")),
    )


def downgrade() -> None:
    op.drop_table("identity_token_audiences")
    op.drop_table("federated_credentials")
