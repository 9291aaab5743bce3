"""Role-assignment (grant) use cases: give an application a role on a resource, list and remove
grants; an application cannot remove its own management role (it would lock itself out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from keyless.clock import Clock
from keyless.directory.applications import ApplicationService
from keyless.directory.base import UseCases, _nothing
from keyless.directory.errors import Conflict, NotFound
from keyless.directory.management import MANAGEMENT_URI
from keyless.domain.model import RoleAssignment, Tenant
from keyless.domain.ports import ApplicationReader, AssignmentStore
from keyless.ids import new_guid


class GrantStore(AssignmentStore, ApplicationReader, Protocol):
    """Grants, and the resources they name."""


class GrantService(UseCases):
    def __init__(self, store: GrantStore, apps: ApplicationService, clock: Clock,
                 on_change: Callable[[], None] = _nothing) -> None:
        super().__init__(clock, on_change)
        self._store = store
        self._apps = apps

    async def grant(self, tenant: Tenant, client_id: str, resource_ref: str, role: str, *,
                    actor: str) -> RoleAssignment:
        client = await self._apps.application(tenant, client_id)
        resource = await self._store.find_resource(tenant.id, resource_ref)
        if resource is None:
            raise NotFound("resource_not_found", "no resource with that identifier URI or client id")
        app_role = resource.role(role)
        if app_role is None:
            raise NotFound("role_not_found", "the resource has no such role")
        assignment = RoleAssignment(
            id=new_guid(), tenant_id=tenant.id, principal_object_id=client.object_id,
            principal_client_id=client.client_id, resource_client_id=resource.client_id, role_id=app_role.id,
            role_value=app_role.value, created_at=self._clock.now(),
        )
        created = await self._store.add_assignment(
            assignment,
            self._audit(tenant.id, actor, "grant.add", "application", client_id,
                        resource=resource.client_id, role=app_role.value, assignment_id=assignment.id),
        )
        if not created:
            existing = [a for a in await self._store.list_assignments(tenant.id, principal_client_id=client_id)
                        if a.role_id == app_role.id]
            if existing:
                return existing[0]
            raise Conflict("grant_conflict", "the grant could not be recorded")
        self._on_change()
        return assignment

    async def list_grants(self, tenant: Tenant, *, client_id: str | None = None,
                          resource_client_id: str | None = None) -> Sequence[RoleAssignment]:
        return await self._store.list_assignments(
            tenant.id, principal_client_id=client_id, resource_client_id=resource_client_id
        )

    async def revoke_grant(self, tenant: Tenant, assignment_id: str, *, actor: str) -> None:
        own = [g for g in await self._store.list_assignments(tenant.id, principal_client_id=actor)
               if g.id == assignment_id]
        if own:
            resource = await self._store.get_application(tenant.id, own[0].resource_client_id)
            if resource is not None and resource.identifier_uri == MANAGEMENT_URI:
                raise Conflict("would_lock_out", "an application cannot remove its own management role")
        ok = await self._store.remove_assignment(
            tenant.id, assignment_id,
            self._audit(tenant.id, actor, "grant.remove", "assignment", assignment_id),
        )
        if not ok:
            raise NotFound("grant_not_found", "no such grant")
        self._on_change()
