"""failure buckets shared by every replica (one failed-authentication budget, not one per process)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "failure_buckets",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_failure_buckets")),
    )
    with op.batch_alter_table("failure_buckets") as batch:
        batch.create_index("ix_failure_buckets_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_table("failure_buckets")
