"""Application use cases: register, change, delete applications and add their roles. Nobody may
lock the management API or themselves out through the API (`_refuse_lockout`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from keyless.clock import Clock
from keyless.directory import validation as v
from keyless.directory.base import UseCases, _nothing
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.directory.management import MANAGEMENT_URI
from keyless.domain.model import Application, AppRole, Tenant
from keyless.domain.ports import ApplicationStore, UniqueViolation
from keyless.ids import new_guid

MAX_ROLES_PER_APP = 100


class ApplicationService(UseCases):
    def __init__(self, store: ApplicationStore, clock: Clock, on_change: Callable[[], None] = _nothing) -> None:
        super().__init__(clock, on_change)
        self._store = store

    async def create_application(
        self, tenant: Tenant, name: str, *, actor: str, identifier_uri: str | None = None,
        roles: Sequence[str] = (), open_to_tenant: bool = False,
    ) -> Application:
        name = v.display_name(name)
        if identifier_uri is not None:
            identifier_uri = v.identifier_uri(identifier_uri)
            if await self._store.identifier_in_use(tenant.id, identifier_uri):
                raise Conflict("identifier_uri_in_use", "another application has that identifier URI")
        values = [v.role_value(r) for r in roles]
        if len(set(values)) != len(values):
            raise Invalid("duplicate_role", "a role is listed twice")
        if len(values) > MAX_ROLES_PER_APP:
            raise Invalid("too_many_roles", f"at most {MAX_ROLES_PER_APP} roles per application")
        if (values or open_to_tenant) and identifier_uri is None:
            raise Invalid("identifier_uri_required", "roles and --open need an identifier URI (a resource)")
        app = Application(
            client_id=new_guid(), tenant_id=tenant.id, display_name=name, object_id=new_guid(),
            enabled=True, identifier_uri=identifier_uri, open_to_tenant=open_to_tenant,
            roles=tuple(AppRole(id=new_guid(), value=r) for r in values), created_at=self._clock.now(),
        )
        audit = self._audit(tenant.id, actor, "application.create", "application", app.client_id,
                            display_name=name, identifier_uri=identifier_uri, roles=values,
                            open_to_tenant=open_to_tenant)
        try:
            await self._store.create_application(app, audit)
        except UniqueViolation:
            raise Conflict("identifier_uri_in_use", "another application has that identifier URI") from None
        self._on_change()
        return app

    async def application(self, tenant: Tenant, client_id: str) -> Application:
        app = await self._store.get_application(tenant.id, client_id)
        if app is None:
            raise NotFound("application_not_found", "no such application in this tenant")
        return app

    async def resolve_application(self, tenant: Tenant, ref: str) -> Application:
        """By client id, identifier URI, or exact display name (when unique)."""
        app = await self._store.find_resource(tenant.id, ref)
        if app is not None:
            return app
        matches = await self._store.named(tenant.id, ref)  # never every application of the tenant
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict("ambiguous_name", "several applications have that display name; use the client id")
        raise NotFound("application_not_found", "no such application in this tenant")

    async def list_applications(self, tenant: Tenant, *, after: tuple[float, str] | None = None,
                                limit: int | None = None) -> Sequence[Application]:
        """Every application, or one page of them (`after` a (created_at, client id) key, at most `limit`)."""
        return await self._store.list_applications(tenant.id, after=after, limit=limit)

    @staticmethod
    def _refuse_lockout(app: Application, actor: str, what: str) -> None:
        """Nobody may cut off the management API or their own access to it through the API itself:
        there would be no way back short of editing the database."""
        if app.identifier_uri == MANAGEMENT_URI:
            raise Conflict("protected_application", f"the management API application cannot be {what}")
        if app.managed_resource_id is not None and what == "deleted":
            raise Conflict("managed_identity", "a managed identity is removed with `keyless identity delete` "
                                               "or, if system-assigned, with its host")
        if app.client_id == actor:
            raise Conflict("would_lock_out", f"an application cannot be {what} by itself: use another admin")

    async def update_application(
        self, tenant: Tenant, client_id: str, *, actor: str, display_name: str | None = None,
        enabled: bool | None = None, open_to_tenant: bool | None = None,
    ) -> Application:
        app = await self.application(tenant, client_id)
        if enabled is False:
            self._refuse_lockout(app, actor, "disabled")
        changes: dict[str, object] = {}
        if display_name is not None:
            changes["display_name"] = v.display_name(display_name)
        if enabled is not None:
            changes["enabled"] = enabled
        if open_to_tenant is not None:
            if open_to_tenant and app.identifier_uri is None:
                raise Invalid("identifier_uri_required", "only a resource (with an identifier URI) can be open")
            changes["open_to_tenant"] = open_to_tenant
        updated = replace(app, **changes)  # type: ignore[arg-type]
        await self._store.update_application(
            updated, self._audit(tenant.id, actor, "application.update", "application", client_id, **changes)
        )
        self._on_change()
        return updated

    async def add_role(self, tenant: Tenant, client_id: str, value: str, *, actor: str) -> AppRole:
        app = await self.application(tenant, client_id)
        value = v.role_value(value)
        if app.identifier_uri is None:
            raise Invalid("identifier_uri_required", "roles belong to resources: set an identifier URI first")
        if app.role(value) is not None:
            raise Conflict("role_exists", "the application already has that role")
        role = AppRole(id=new_guid(), value=value)
        await self._store.add_role(tenant.id, client_id, role,
                                   self._audit(tenant.id, actor, "application.role.add", "application",
                                               client_id, role=value))
        self._on_change()
        return role

    async def delete_application(self, tenant: Tenant, client_id: str, *, actor: str) -> None:
        self._refuse_lockout(await self.application(tenant, client_id), actor, "deleted")
        deleted = await self._store.delete_application(
            tenant.id, client_id, self._audit(tenant.id, actor, "application.delete", "application", client_id)
        )
        if not deleted:
            raise NotFound("application_not_found", "no such application in this tenant")
        self._on_change()
