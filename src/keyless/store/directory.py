"""`DirectoryStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Each write is one transaction together with its audit row. Reads return frozen domain objects; the
per-process caching of hot reads lives in `keyless.directory.cache`, not here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyless.domain.model import (
    Application,
    AppRole,
    AuditEvent,
    ClientCertificate,
    ClientRecord,
    ClientSecret,
    RoleAssignment,
    SignInEvent,
    SigningKey,
    Tenant,
)
from keyless.domain.ports import LogQuery, UniqueViolation
from keyless.ids import is_guid
from keyless.store import tables as t
from keyless.store.logrows import audit_row as _audit_row
from keyless.store.logrows import signin_row as _signin_row
from keyless.store.one_time import OneTimeStore


def _tenant(row: Row[Any]) -> Tenant:
    return Tenant(
        id=row.id, name=row.name, signing_alg=row.signing_alg, token_lifetime=row.token_lifetime,
        max_secret_lifetime=row.max_secret_lifetime, default_secret_lifetime=row.default_secret_lifetime,
        assertion_audience=row.assertion_audience, created_at=row.created_at,
        max_certificate_lifetime=row.max_certificate_lifetime,
    )


def _secret(row: Row[Any]) -> ClientSecret:
    return ClientSecret(
        id=row.id, client_id=row.client_id, hint=row.hint, digest=bytes(row.digest), pepper_id=row.pepper_id,
        created_at=row.created_at, expires_at=row.expires_at, last_used_at=row.last_used_at,
        display_name=row.display_name,
    )


def _certificate(row: Row[Any]) -> ClientCertificate:
    return ClientCertificate(
        id=row.id, client_id=row.client_id, x5t=row.x5t, x5t_s256=row.x5t_s256, der=bytes(row.der),
        subject=row.subject, key_type=row.key_type, key_size=row.key_size, not_before=row.not_before,
        not_after=row.not_after, created_at=row.created_at, last_used_at=row.last_used_at,
        display_name=row.display_name,
    )


def _key(row: Row[Any]) -> SigningKey:
    return SigningKey(
        kid=row.kid, tenant_id=row.tenant_id, alg=row.alg, public_jwk=dict(row.public_jwk),
        sealed_private=bytes(row.sealed_private), created_at=row.created_at,
        activates_at=row.activates_at, retire_at=row.retire_at,
    )


class SqlDirectoryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._one_time = OneTimeStore(engine)

    def close(self) -> None:
        """Release what the store holds beyond the engine's pool (the single-use writer)."""
        self._one_time.close()

    # -- helpers -----------------------------------------------------------------------------------
    async def _audit(self, conn: AsyncConnection, event: AuditEvent) -> None:
        await conn.execute(insert(t.audit_log).values(**_audit_row(event)))

    async def _apps(self, conn: AsyncConnection, *where: Any) -> list[Application]:
        query = select(t.applications).where(*where).order_by(t.applications.c.created_at)
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        ids = [r.client_id for r in rows]
        role_query = select(t.app_roles).where(t.app_roles.c.client_id.in_(ids)).order_by(t.app_roles.c.value)
        role_rows = (await conn.execute(role_query)).all()
        roles: dict[str, list[AppRole]] = {}
        for rr in role_rows:
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

    # -- DirectoryReader ---------------------------------------------------------------------------
    async def get_tenant(self, name_or_id: str) -> Tenant | None:
        col = t.tenants.c.id if is_guid(name_or_id) else t.tenants.c.name
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.tenants).where(col == name_or_id.lower()))).first()
        return _tenant(row) if row else None

    async def get_application(self, tenant_id: str, client_id: str) -> Application | None:
        if not is_guid(client_id):
            return None
        async with self.engine.connect() as conn:
            apps = await self._apps(
                conn, t.applications.c.tenant_id == tenant_id, t.applications.c.client_id == client_id
            )
        return apps[0] if apps else None

    async def get_client(self, tenant_id: str, client_id: str) -> ClientRecord | None:
        if not is_guid(client_id):
            return None
        async with self.engine.connect() as conn:
            apps = await self._apps(
                conn, t.applications.c.tenant_id == tenant_id, t.applications.c.client_id == client_id
            )
            if not apps:
                return None
            rows = (
                await conn.execute(
                    select(t.client_secrets).where(
                        t.client_secrets.c.client_id == client_id, t.client_secrets.c.revoked_at.is_(None)
                    )
                )
            ).all()
            cert_rows = (
                await conn.execute(
                    select(t.client_certificates).where(
                        t.client_certificates.c.client_id == client_id, t.client_certificates.c.revoked_at.is_(None)
                    )
                )
            ).all()
            certificates = tuple(_certificate(r) for r in cert_rows)
            if apps[0].managed_resource_id is not None:
                from keyless.store.hosts import entitled_certificates  # hosts builds on this module

                certificates += await entitled_certificates(conn, client_id)
        return ClientRecord(app=apps[0], secrets=tuple(_secret(r) for r in rows), certificates=certificates)

    async def find_resource(self, tenant_id: str, identifier: str) -> Application | None:
        cond = t.applications.c.identifier_uri == identifier
        if is_guid(identifier):
            cond = or_(cond, t.applications.c.client_id == identifier)
        async with self.engine.connect() as conn:
            apps = await self._apps(conn, t.applications.c.tenant_id == tenant_id, cond)
        return apps[0] if apps else None

    async def assigned_roles(
        self, tenant_id: str, principal_object_id: str, resource_client_id: str
    ) -> tuple[str, ...] | None:
        q = (
            select(t.app_roles.c.value, t.app_roles.c.enabled)
            .select_from(t.role_assignments.join(t.app_roles, t.app_roles.c.id == t.role_assignments.c.role_id))
            .where(
                t.role_assignments.c.tenant_id == tenant_id,
                t.role_assignments.c.principal_object_id == principal_object_id,
                t.role_assignments.c.resource_client_id == resource_client_id,
            )
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        if not rows:
            return None
        return tuple(sorted(r.value for r in rows if r.enabled))

    async def signing_keys(self, tenant_id: str) -> Sequence[SigningKey]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.signing_keys)
                    .where(t.signing_keys.c.tenant_id == tenant_id)
                    .order_by(t.signing_keys.c.activates_at)
                )
            ).all()
        return [_key(r) for r in rows]

    # -- tenants -----------------------------------------------------------------------------------
    async def list_tenants(self) -> Sequence[Tenant]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.tenants).order_by(t.tenants.c.created_at))).all()
        return [_tenant(r) for r in rows]

    @staticmethod
    def _tenant_values(tenant: Tenant) -> dict[str, Any]:
        return {
            "id": tenant.id, "name": tenant.name, "signing_alg": tenant.signing_alg,
            "token_lifetime": tenant.token_lifetime, "max_secret_lifetime": tenant.max_secret_lifetime,
            "default_secret_lifetime": tenant.default_secret_lifetime,
            "assertion_audience": tenant.assertion_audience, "created_at": tenant.created_at,
            "max_certificate_lifetime": tenant.max_certificate_lifetime,
        }

    async def create_tenant(self, tenant: Tenant, audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.tenants).values(**self._tenant_values(tenant)))
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("tenant exists") from None

    async def update_tenant(self, tenant: Tenant, audit: AuditEvent) -> None:
        values = self._tenant_values(tenant)
        values.pop("id")
        values.pop("created_at")
        async with self.engine.begin() as conn:
            await conn.execute(update(t.tenants).where(t.tenants.c.id == tenant.id).values(**values))
            await self._audit(conn, audit)

    # -- applications ------------------------------------------------------------------------------
    async def list_applications(self, tenant_id: str) -> Sequence[Application]:
        async with self.engine.connect() as conn:
            return await self._apps(conn, t.applications.c.tenant_id == tenant_id)

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
            # Explicit child deletes: SQLite only cascades when foreign keys are on for the connection.
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
            await conn.execute(delete(t.client_secrets).where(t.client_secrets.c.client_id == client_id))
            await conn.execute(delete(t.client_certificates).where(t.client_certificates.c.client_id == client_id))
            fc = t.federated_credentials
            await conn.execute(delete(fc).where(fc.c.owner_type == "application", fc.c.owner_id == client_id))
            ita = t.identity_token_audiences
            await conn.execute(delete(ita).where(ita.c.owner_type == "application", ita.c.owner_id == client_id))
            await conn.execute(delete(t.app_roles).where(t.app_roles.c.client_id == client_id))
            await conn.execute(delete(t.applications).where(owned))
            await self._audit(conn, audit)
        return True

    # -- secrets -----------------------------------------------------------------------------------
    async def list_secrets(self, tenant_id: str, client_id: str) -> Sequence[ClientSecret]:
        q = (
            select(t.client_secrets)
            .select_from(t.client_secrets.join(t.applications))
            .where(
                t.applications.c.tenant_id == tenant_id,
                t.client_secrets.c.client_id == client_id,
                t.client_secrets.c.revoked_at.is_(None),
            )
            .order_by(t.client_secrets.c.created_at)
        )
        async with self.engine.connect() as conn:
            return [_secret(r) for r in (await conn.execute(q)).all()]

    async def add_secret(self, tenant_id: str, secret: ClientSecret, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(t.client_secrets).values(
                    id=secret.id, client_id=secret.client_id, hint=secret.hint, digest=secret.digest,
                    pepper_id=secret.pepper_id, display_name=secret.display_name, created_at=secret.created_at,
                    expires_at=secret.expires_at, last_used_at=None, revoked_at=None,
                )
            )
            await self._audit(conn, audit)

    async def revoke_secret(self, tenant_id: str, client_id: str, secret_id: str, audit: AuditEvent) -> bool:
        owned = select(t.applications.c.client_id).where(
            t.applications.c.client_id == client_id, t.applications.c.tenant_id == tenant_id
        )
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(t.client_secrets)
                .where(
                    t.client_secrets.c.id == secret_id,
                    t.client_secrets.c.client_id.in_(owned),
                    t.client_secrets.c.revoked_at.is_(None),
                )
                .values(revoked_at=audit.time)
            )
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    async def mark_secrets_used(self, last_used: Mapping[str, float]) -> None:
        await self._mark_used(t.client_secrets, last_used)

    async def _mark_used(self, table: Any, last_used: Mapping[str, float]) -> None:
        if not last_used:
            return
        async with self.engine.begin() as conn:
            for credential_id, when in last_used.items():
                await conn.execute(
                    update(table)
                    .where(
                        table.c.id == credential_id,
                        or_(table.c.last_used_at.is_(None), table.c.last_used_at < when),
                    )
                    .values(last_used_at=when)
                )

    # -- certificates ------------------------------------------------------------------------------
    async def list_certificates(self, tenant_id: str, client_id: str) -> Sequence[ClientCertificate]:
        c = t.client_certificates
        q = (
            select(c)
            .select_from(c.join(t.applications))
            .where(t.applications.c.tenant_id == tenant_id, c.c.client_id == client_id, c.c.revoked_at.is_(None))
            .order_by(c.c.created_at)
        )
        async with self.engine.connect() as conn:
            return [_certificate(r) for r in (await conn.execute(q)).all()]

    async def add_certificate(self, tenant_id: str, certificate: ClientCertificate, audit: AuditEvent) -> None:
        cert = certificate
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(t.client_certificates).values(
                    id=cert.id, client_id=cert.client_id, x5t=cert.x5t, x5t_s256=cert.x5t_s256, der=cert.der,
                    subject=cert.subject, key_type=cert.key_type, key_size=cert.key_size,
                    not_before=cert.not_before, not_after=cert.not_after, display_name=cert.display_name,
                    created_at=cert.created_at, last_used_at=None, revoked_at=None,
                )
            )
            await self._audit(conn, audit)

    async def revoke_certificate(
        self, tenant_id: str, client_id: str, certificate_id: str, audit: AuditEvent
    ) -> bool:
        c = t.client_certificates
        owned = select(t.applications.c.client_id).where(
            t.applications.c.client_id == client_id, t.applications.c.tenant_id == tenant_id
        )
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(c)
                .where(c.c.id == certificate_id, c.c.client_id.in_(owned), c.c.revoked_at.is_(None))
                .values(revoked_at=audit.time)
            )
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    async def mark_certificates_used(self, last_used: Mapping[str, float]) -> None:
        await self._mark_used(t.client_certificates, last_used)

    # -- single-use values ---------------------------------------------------------------------------
    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        return await self._one_time.consume(kind, owner, value, expires_at)

    # -- role assignments --------------------------------------------------------------------------
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
        async with self.engine.begin() as conn:
            res = await conn.execute(
                delete(t.role_assignments).where(
                    t.role_assignments.c.id == assignment_id, t.role_assignments.c.tenant_id == tenant_id
                )
            )
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    # -- signing keys ------------------------------------------------------------------------------
    async def add_signing_key(self, key: SigningKey, audit: AuditEvent) -> None:
        sk = t.signing_keys
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(sk).values(
                    kid=key.kid, tenant_id=key.tenant_id, alg=key.alg, public_jwk=key.public_jwk,
                    sealed_private=key.sealed_private, created_at=key.created_at,
                    activates_at=key.activates_at, retire_at=key.retire_at,
                )
            )
            await self._audit(conn, audit)

    async def retire_signing_key(self, tenant_id: str, kid: str, at: float, audit: AuditEvent) -> bool:
        sk = t.signing_keys
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(sk).where(sk.c.tenant_id == tenant_id, sk.c.kid == kid).values(retire_at=at)
            )
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
        return True

    # -- logs --------------------------------------------------------------------------------------
    async def record_signins(self, events: Sequence[SignInEvent]) -> None:
        if not events:
            return
        async with self.engine.begin() as conn:
            await conn.execute(insert(t.signin_log), [_signin_row(e) for e in events])

    async def record_audit(self, event: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await self._audit(conn, event)

    @staticmethod
    def _window(q: Any, col_time: Any, query: LogQuery) -> Any:
        if query.since is not None:
            q = q.where(col_time >= query.since)
        if query.until is not None:
            q = q.where(col_time < query.until)
        return q

    async def query_signins(self, query: LogQuery) -> Sequence[SignInEvent]:
        s = t.signin_log
        q = select(s).where(s.c.tenant_id == query.tenant_id)
        if query.client_id:
            q = q.where(s.c.client_id == query.client_id)
        if query.result:
            q = q.where(s.c.result == query.result)
        q = self._window(q, s.c.time, query).order_by(s.c.id.desc()).limit(query.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            SignInEvent(
                time=r.time, tenant_id=r.tenant_id, client_id=r.client_id, credential_id=r.credential_id,
                credential_type=r.credential_type, resource=r.resource, result=r.result, error=r.error,
                detail=r.detail, source=r.source, token_id=r.token_id, grant_type=r.grant_type,
                auth_method=r.auth_method,
            )
            for r in rows
        ]

    async def query_audit(self, query: LogQuery) -> Sequence[AuditEvent]:
        a = t.audit_log
        q = select(a).where(a.c.tenant_id == query.tenant_id)
        if query.client_id:
            q = q.where(or_(a.c.actor == query.client_id, a.c.target_id == query.client_id))
        if query.action:
            q = q.where(a.c.action == query.action)
        q = self._window(q, a.c.time, query).order_by(a.c.id.desc()).limit(query.limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            AuditEvent(
                time=r.time, tenant_id=r.tenant_id, actor=r.actor, action=r.action, target_type=r.target_type,
                target_id=r.target_id, details=json.loads(r.details),
            )
            for r in rows
        ]
