"""certificates: whether the installation's CA issued each one, decided once (issue 13 item 5)

"Issued by this installation's CA" needs the CA's signature over the certificate checked (ECDSA,
~0.5 ms). The posture report and the policy dry run asked it of every certificate on every server
start (3,600 checks for a 20,000-workload estate: docs/benchmarks.md, "Posture"). The verdict is now
kept with the certificate: `ca_issued` is the answer and `ca_checked` the x5t#S256 of the CA
certificate it was given for, so a verdict never outlives its CA (a restored database under another
data directory is checked again). Existing rows start unchecked (NULL) and get their verdict the
first time a report reads them (`keyless.store.posture`).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("ca_issued", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("ca_checked", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("ca_checked")
        batch.drop_column("ca_issued")
