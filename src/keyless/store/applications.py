"""Applications and their roles on SQLAlchemy Core (`keyless.domain.ports.ApplicationStore`).

Deleting an application removes what hangs off it in the same transaction (credentials of every
kind, through `keyless.store.credentials`, grants in both directions, roles), explicitly: SQLite only
cascades when foreign keys are on for the connection. The token endpoint's client lookup
(`get_client`: an application with its live credentials) lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from keyless.domain.credentials import Owner
from keyless.domain.model import Application, AppRole, AuditEvent, ClientRecord
from keyless.domain.ports import UniqueViolation
from keyless.ids import is_guid
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.credentials import (
    certificate_of,
    drop_credentials_of,
    entitled_certificates,
    of_application,
    secret_of,
)


async def load_applications(conn: AsyncConnection, *where: Any, roles_anyway: str | None = None,
                            limit: int | None = None) -> list[Application]:
    """Applications matching `where` in creation order (at most `limit`), with their roles (two queries,
    whatever the count; the roles query runs for `roles_anyway` when nothing matched, so a miss costs
    what a hit costs)."""
    query = select(t.applications).where(*where).order_by(t.applications.c.created_at, t.applications.c.client_id)
    if limit is not None:
        query = query.limit(limit)
    rows = (await conn.execute(query)).all()
    ids = [r.client_id for r in rows] or ([roles_anyway] if roles_anyway else [])
    if not ids:
        return []
    role_query = select(t.app_roles).where(t.app_roles.c.client_id.in_(ids)).order_by(t.app_roles.c.value)
    roles: dict[str, list[AppRole]] = {}
    for rr in (await conn.execute(role_query)).all():
        roles.setdefault(rr.client_id, []).append(
            AppRole(id=rr.id, value=rr.value, description=rr.description, enabled=rr.enabled)
        )
    return [
        Application(
            client_id=r.client_id, tenant_id=r.tenant_id, display_name=r.display_name, object_id=r.object_id,
            enabled=r.enabled, identifier_uri=r.identifier_uri, open_to_tenant=r.open_to_tenant,
            roles=tuple(roles.get(r.client_id, ())), created_at=r.created_at,
            managed_resource_id=r.managed_resource_id,
        )
        for r in rows
    ]


async def load_application(conn: AsyncConnection, tenant_id: str, client_id: str) -> Application | None:
    if not is_guid(client_id):
        return None
    apps = await load_applications(
        conn, t.applications.c.tenant_id == tenant_id, t.applications.c.client_id == client_id
    )
    return apps[0] if apps else None


class SqlApplicationStore(SqlRepository):
    async def get_client(self, tenant_id: str, client_id: str) -> ClientRecord | None:
        """Four queries whether or not the client exists, a non-GUID id looking up the nil GUID that no
        client has: the work does not tell unknown from known clients (docs/security.md, "Equal work
        for unknown and known clients")."""
        cc = t.certificates
        client_id = client_id if is_guid(client_id) else "00000000-0000-0000-0000-000000000000"
        async with self.engine.connect() as conn:
            apps = await load_applications(conn, t.applications.c.tenant_id == tenant_id,
                                           t.applications.c.client_id == client_id, roles_anyway=client_id)
            rows = (await conn.execute(
                select(t.client_secrets).where(
                    t.client_secrets.c.client_id == client_id, t.client_secrets.c.revoked_at.is_(None)
                )
            )).all()
            cert_rows = (await conn.execute(
                select(cc).where(of_application(client_id), cc.c.revoked_at.is_(None))
            )).all()
            if not apps:
                return None
            app = apps[0]
            certificates = tuple(certificate_of(r) for r in cert_rows)
            if app.managed_resource_id is not None:
                certificates += await entitled_certificates(conn, client_id)
        return ClientRecord(app=app, secrets=tuple(secret_of(r) for r in rows), certificates=certificates)

    async def get_application(self, tenant_id: str, client_id: str) -> Application | None:
        async with self.engine.connect() as conn:
            return await load_application(conn, tenant_id, client_id)

    async def find_resource(self, tenant_id: str, identifier: str) -> Application | None:
        cond = t.applications.c.identifier_uri == identifier
        if is_guid(identifier):
            cond = or_(cond, t.applications.c.client_id == identifier)
        async with self.engine.connect() as conn:
            apps = await load_applications(conn, t.applications.c.tenant_id == tenant_id, cond)
        return apps[0] if apps else None

    async def list_applications(self, tenant_id: str, *, after: tuple[float, str] | None = None,
                                limit: int | None = None) -> Sequence[Application]:
        a = t.applications.c
        where = [a.tenant_id == tenant_id]
        if after is not None:
            where.append(or_(a.created_at > after[0], and_(a.created_at == after[0], a.client_id > after[1])))
        async with self.engine.connect() as conn:
            return await load_applications(conn, *where, limit=limit)

    async def named(self, tenant_id: str, display_name: str, *, limit: int = 2) -> Sequence[Application]:
        a = t.applications.c
        async with self.engine.connect() as conn:
            return await load_applications(conn, a.tenant_id == tenant_id, a.display_name == display_name,
                                           limit=limit)

    async def identifier_in_use(self, tenant_id: str, identifier_uri: str) -> bool:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.applications.c.client_id).where(
                        t.applications.c.tenant_id == tenant_id, t.applications.c.identifier_uri == identifier_uri
                    )
                )
            ).first()
        return row is not None

    async def create_application(self, app: Application, audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(t.applications).values(
                        client_id=app.client_id, tenant_id=app.tenant_id, object_id=app.object_id,
                        display_name=app.display_name, enabled=app.enabled, identifier_uri=app.identifier_uri,
                        open_to_tenant=app.open_to_tenant, created_at=app.created_at,
                        managed_resource_id=app.managed_resource_id,
                    )
                )
                if app.roles:
                    await conn.execute(
                        insert(t.app_roles),
                        [
                            {"id": r.id, "client_id": app.client_id, "value": r.value,
                             "description": r.description, "enabled": r.enabled}
                            for r in app.roles
                        ],
                    )
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("application conflicts with an existing one") from None

    async def update_application(self, app: Application, audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(t.applications)
                    .where(t.applications.c.client_id == app.client_id, t.applications.c.tenant_id == app.tenant_id)
                    .values(
                        display_name=app.display_name, enabled=app.enabled, identifier_uri=app.identifier_uri,
                        open_to_tenant=app.open_to_tenant,
                    )
                )
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("identifier URI in use") from None

    async def add_role(self, tenant_id: str, client_id: str, role: AppRole, audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(t.app_roles).values(
                        id=role.id, client_id=client_id, value=role.value, description=role.description,
                        enabled=role.enabled,
                    )
                )
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("role exists") from None

    async def delete_application(self, tenant_id: str, client_id: str, audit: AuditEvent) -> bool:
        async with self.engine.begin() as conn:
            owned = and_(t.applications.c.client_id == client_id, t.applications.c.tenant_id == tenant_id)
            if (await conn.execute(select(t.applications.c.client_id).where(owned))).first() is None:
                return False
            await conn.execute(
                delete(t.role_assignments).where(
                    or_(
                        t.role_assignments.c.principal_client_id == client_id,
                        t.role_assignments.c.resource_client_id == client_id,
                    )
                )
            )
            await drop_credentials_of(conn, Owner("application", client_id))
            ita = t.identity_token_audiences
            await conn.execute(delete(ita).where(ita.c.owner_type == "application", ita.c.owner_id == client_id))
            await conn.execute(delete(t.app_roles).where(t.app_roles.c.client_id == client_id))
            await conn.execute(delete(t.applications).where(owned))
            await self._audit(conn, audit)
        return True
