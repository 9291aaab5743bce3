"""leak records, and the keyed-hash index a presented secret is looked up by (issue 14)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leaks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("location", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("reporter", sa.String(length=128), nullable=False),
        sa.Column("reported_at", sa.Double(), nullable=False),
        sa.Column("status_before", sa.String(length=16), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_leaks_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["applications.client_id"],
                                name=op.f("fk_leaks_client_id_applications"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["secret_id"], ["client_secrets.id"], name=op.f("fk_leaks_secret_id_client_secrets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaks")),
        sa.UniqueConstraint("secret_id", "location", name="uq_leaks_secret_location"),
    )
    op.create_index("ix_leaks_tenant_time", "leaks", ["tenant_id", "reported_at"], unique=False)
    op.create_index("ix_client_secrets_digest", "client_secrets", ["digest"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_client_secrets_digest", table_name="client_secrets")
    op.drop_index("ix_leaks_tenant_time", table_name="leaks")
    op.drop_table("leaks")
