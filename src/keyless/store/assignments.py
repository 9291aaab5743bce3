"""Role assignments (grants) on SQLAlchemy Core (`keyless.domain.ports.AssignmentStore`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from keyless.domain.model import AuditEvent, RoleAssignment
from keyless.store import tables as t
from keyless.store.base import SqlRepository


class SqlAssignmentStore(SqlRepository):
    async def assigned_roles(
        self, tenant_id: str, principal_object_id: str, resource_client_id: str
    ) -> tuple[str, ...] | None:
        ra = t.role_assignments
        q = (
            select(t.app_roles.c.value, t.app_roles.c.enabled)
            .select_from(ra.join(t.app_roles, t.app_roles.c.id == ra.c.role_id))
            .where(
                ra.c.tenant_id == tenant_id,
                ra.c.principal_object_id == principal_object_id,
                ra.c.resource_client_id == resource_client_id,
            )
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        if not rows:
            return None
        return tuple(sorted(r.value for r in rows if r.enabled))

    async def list_assignments(
        self, tenant_id: str, *, principal_client_id: str | None = None, resource_client_id: str | None = None
    ) -> Sequence[RoleAssignment]:
        ra = t.role_assignments
        q = (
            select(ra, t.app_roles.c.value)
            .select_from(ra.join(t.app_roles, t.app_roles.c.id == ra.c.role_id))
            .where(ra.c.tenant_id == tenant_id)
            .order_by(ra.c.created_at)
        )
        if principal_client_id:
            q = q.where(ra.c.principal_client_id == principal_client_id)
        if resource_client_id:
            q = q.where(ra.c.resource_client_id == resource_client_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            RoleAssignment(
                id=r.id, tenant_id=r.tenant_id, principal_object_id=r.principal_object_id,
                principal_client_id=r.principal_client_id, resource_client_id=r.resource_client_id,
                role_id=r.role_id, role_value=r.value, created_at=r.created_at,
            )
            for r in rows
        ]

    async def add_assignment(self, assignment: RoleAssignment, audit: AuditEvent) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(t.role_assignments).values(
                        id=assignment.id, tenant_id=assignment.tenant_id,
                        principal_object_id=assignment.principal_object_id,
                        principal_client_id=assignment.principal_client_id,
                        resource_client_id=assignment.resource_client_id, role_id=assignment.role_id,
                        created_at=assignment.created_at,
                    )
                )
                await self._audit(conn, audit)
        except IntegrityError:
            return False
        return True

    async def remove_assignment(self, tenant_id: str, assignment_id: str, audit: AuditEvent) -> bool:
        ra = t.role_assignments
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(ra).where(ra.c.id == assignment_id, ra.c.tenant_id == tenant_id))
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True
