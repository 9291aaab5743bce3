"""applications by (tenant, client id): the posture report's pages (issue 13 item 5)

The report pages a tenant's applications in client-id order (`keyless.store.posture`). With only
`ix_applications_tenant`, each page read every application of the tenant and sorted them (SQLite's
temporary B-tree; measured in docs/benchmarks.md, "Posture"): with this index a page is a range scan.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_applications_tenant_client", "applications", ["tenant_id", "client_id"])


def downgrade() -> None:
    op.drop_index("ix_applications_tenant_client", table_name="applications")
