"""one_time_log: the single-use values a SQLite server decided in memory (issue 18)

On SQLite a server decides single-use values (assertion `jti`s, join tokens) in its own memory and
appends each to this log, with no unique key, before it answers (`keyless.store.one_time_memory`):
the unique key of `one_time_uses` wrote a random page for every value. At start the log's live rows
are read back. The table exists on PostgreSQL too, unused: there `one_time_uses` decides, shared by
every replica.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "one_time_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("digest", sa.LargeBinary(16), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_one_time_log_expires", "one_time_log", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_one_time_log_expires", table_name="one_time_log")
    op.drop_table("one_time_log")
