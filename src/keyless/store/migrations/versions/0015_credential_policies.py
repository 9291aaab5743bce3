"""credential policies: a tenant default and per-application overrides (docs/policies.md)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_policies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_credential_policies_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "client_id", name=op.f("pk_credential_policies")),
    )


def downgrade() -> None:
    op.drop_table("credential_policies")
