"""last use of every credential kind: the source address beside the time, and federated credentials'
last use (issue 13 item 2, the inventory)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client_secrets") as batch:
        batch.add_column(sa.Column("last_used_from", sa.String(length=64), nullable=True))
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("last_used_from", sa.String(length=64), nullable=True))
    with op.batch_alter_table("federated_credentials") as batch:
        batch.add_column(sa.Column("last_used_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("last_used_from", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("federated_credentials") as batch:
        batch.drop_column("last_used_from")
        batch.drop_column("last_used_at")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("last_used_from")
    with op.batch_alter_table("client_secrets") as batch:
        batch.drop_column("last_used_from")
