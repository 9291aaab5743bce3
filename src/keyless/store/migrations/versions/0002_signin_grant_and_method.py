"""sign-in log: grant type and client authentication method (catalog M05)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signin_log") as batch:
        batch.add_column(sa.Column("grant_type", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("auth_method", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signin_log") as batch:
        batch.drop_column("auth_method")
        batch.drop_column("grant_type")
