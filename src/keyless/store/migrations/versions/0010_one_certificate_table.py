"""one certificate table for every owner kind (application, host), carrying every existing row

`client_certificates` and `host_certificates` held the same thing twice; `certificates` holds both
with `owner_kind` and `owner_id` (as `federated_credentials` does). Every row keeps its id, so
credential ids in the sign-in log still name the same certificate.

Revision ID: 0010
Revises: 0009
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COMMON = ("id", "x5t", "x5t_s256", "der", "subject", "key_type", "key_size", "not_before", "not_after",
           "created_at")
_TRACKED = ("display_name", "last_used_at", "revoked_at")


def _copy(source: str, target: str, target_columns: tuple[str, ...], *selected: Any, where: Any = None) -> None:
    """INSERT INTO target (columns) SELECT selected FROM source [WHERE ...], on lightweight tables."""
    src = sa.table(source, *(sa.column(c) for c in {*_COMMON, *_TRACKED, "client_id", "host_id", "owner_id",
                                                     "owner_kind"}))
    dst = sa.table(target, *(sa.column(c) for c in target_columns))
    query = sa.select(*(src.c[c] for c in _COMMON), *selected).select_from(src)
    if where is not None:
        query = query.where(where)
    op.execute(sa.insert(dst).from_select(list(target_columns), query))


def _certificate_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("x5t", sa.String(length=64), nullable=False),
        sa.Column("x5t_s256", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("key_size", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Double(), nullable=False),
        sa.Column("not_after", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "certificates",
        *_certificate_columns(),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("last_used_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    op.create_index("ix_certificates_owner", "certificates", ["owner_kind", "owner_id"], unique=False)
    target = (*_COMMON, "owner_kind", "owner_id", *_TRACKED)
    client, host = sa.column("client_id", sa.String), sa.column("host_id", sa.String)
    _copy("client_certificates", "certificates", target, sa.literal("application"), client,
          sa.column("display_name"), sa.column("last_used_at"), sa.column("revoked_at"))
    _copy("host_certificates", "certificates", target, sa.literal("host"), host, sa.literal(""),
          sa.cast(sa.null(), sa.Double()), sa.cast(sa.null(), sa.Double()))
    op.drop_table("client_certificates")
    op.drop_table("host_certificates")


def downgrade() -> None:
    op.create_table(
        "client_certificates",
        *_certificate_columns(),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("last_used_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["applications.client_id"],
                                name=op.f("fk_client_certificates_client_id_applications"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_certificates")),
    )
    op.create_index("ix_client_certificates_client", "client_certificates", ["client_id"], unique=False)
    op.create_table(
        "host_certificates",
        *_certificate_columns(),
        sa.Column("host_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_host_certificates_host_id_hosts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_certificates")),
    )
    op.create_index("ix_host_certificates_host", "host_certificates", ["host_id"], unique=False)
    kind = sa.column("owner_kind", sa.String)
    _copy("certificates", "client_certificates", (*_COMMON, "client_id", *_TRACKED), sa.column("owner_id"),
          sa.column("display_name"), sa.column("last_used_at"), sa.column("revoked_at"),
          where=kind == "application")
    _copy("certificates", "host_certificates", (*_COMMON, "host_id"), sa.column("owner_id"), where=kind == "host")
    op.drop_table("certificates")
