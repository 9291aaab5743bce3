"""Tenants on SQLAlchemy Core (`keyless.domain.ports.TenantStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from keyless.domain.model import AuditEvent, Tenant
from keyless.domain.ports import UniqueViolation
from keyless.ids import is_guid
from keyless.store import tables as t
from keyless.store.base import SqlRepository


def tenant_of(row: Row[Any]) -> Tenant:
    return Tenant(
        id=row.id, name=row.name, signing_alg=row.signing_alg, token_lifetime=row.token_lifetime,
        max_secret_lifetime=row.max_secret_lifetime, default_secret_lifetime=row.default_secret_lifetime,
        assertion_audience=row.assertion_audience, created_at=row.created_at,
        max_certificate_lifetime=row.max_certificate_lifetime,
    )


def _values(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id, "name": tenant.name, "signing_alg": tenant.signing_alg,
        "token_lifetime": tenant.token_lifetime, "max_secret_lifetime": tenant.max_secret_lifetime,
        "default_secret_lifetime": tenant.default_secret_lifetime,
        "assertion_audience": tenant.assertion_audience, "created_at": tenant.created_at,
        "max_certificate_lifetime": tenant.max_certificate_lifetime,
    }


class SqlTenantStore(SqlRepository):
    async def get_tenant(self, name_or_id: str) -> Tenant | None:
        col = t.tenants.c.id if is_guid(name_or_id) else t.tenants.c.name
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.tenants).where(col == name_or_id.lower()))).first()
        return tenant_of(row) if row else None

    async def list_tenants(self) -> Sequence[Tenant]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.tenants).order_by(t.tenants.c.created_at))).all()
        return [tenant_of(r) for r in rows]

    async def create_tenant(self, tenant: Tenant, audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.tenants).values(**_values(tenant)))
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("tenant exists") from None

    async def update_tenant(self, tenant: Tenant, audit: AuditEvent) -> None:
        values = _values(tenant)
        values.pop("id")
        values.pop("created_at")
        async with self.engine.begin() as conn:
            await conn.execute(update(t.tenants).where(t.tenants.c.id == tenant.id).values(**values))
            await self._audit(conn, audit)
