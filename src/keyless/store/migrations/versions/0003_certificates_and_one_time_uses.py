"""certificate credentials, single-use values (assertion jti), tenant certificate lifetime cap

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_certificates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("x5t", sa.String(length=64), nullable=False),
        sa.Column("x5t_s256", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("key_size", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Double(), nullable=False),
        sa.Column("not_after", sa.Double(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_used_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["applications.client_id"], name=op.f("fk_client_certificates_client_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_certificates")),
    )
    with op.batch_alter_table("client_certificates") as batch:
        batch.create_index("ix_client_certificates_client", ["client_id"], unique=False)
    op.create_table(
        "one_time_uses",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "owner", "value", name=op.f("pk_one_time_uses")),
    )
    with op.batch_alter_table("one_time_uses") as batch:
        batch.create_index("ix_one_time_uses_expires", ["expires_at"], unique=False)
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("max_certificate_lifetime", sa.Integer(), nullable=False, server_default=str(3 * 365 * 86400))
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("max_certificate_lifetime")
    op.drop_table("one_time_uses")
    op.drop_table("client_certificates")
