"""`HostStore` on SQLAlchemy Core: hosts, managed identities, host certificates, assignments and
workload bindings. Each write is one transaction with its audit row (`keyless.store.base`). A host's
certificates are written by the credential store (`keyless.store.credentials`, the one writer of
every credential): an enrollment's change to the host row runs inside that write's transaction
(`enrolling`), and a host's or identity's removal drops its credentials through that module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyless.domain.credentials import Owner, Transaction, TransactionStep
from keyless.domain.identities import Host, ManagedIdentity, WorkloadBinding
from keyless.domain.model import Application, AuditEvent
from keyless.domain.ports import OneTimeUses, UniqueViolation
from keyless.ids import is_guid
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.credentials import drop_credentials_of


def _host(row: Row[Any]) -> Host:
    return Host(
        id=row.id, tenant_id=row.tenant_id, name=row.name, system_client_id=row.system_client_id,
        created_at=row.created_at, enrolled_at=row.enrolled_at, join_expires_at=row.join_expires_at,
        join_digest=bytes(row.join_digest) if row.join_digest is not None else None,
    )


def _identity(row: Row[Any]) -> ManagedIdentity:
    return ManagedIdentity(
        client_id=row.client_id, object_id=row.object_id, tenant_id=row.tenant_id, name=row.name, kind=row.kind,
        resource_id=row.resource_id, host_id=row.host_id, created_at=row.created_at,
    )


def _binding(row: Row[Any]) -> WorkloadBinding:
    return WorkloadBinding(
        id=row.id, tenant_id=row.tenant_id, host_id=row.host_id, identity_client_id=row.identity_client_id,
        uid=row.uid, gid=row.gid, exe=row.exe, unit=row.unit, created_at=row.created_at,
    )


_IDENTITY_COLUMNS = (t.managed_identities, t.applications.c.object_id)


class SqlHostStore(SqlRepository):
    def __init__(self, engine: AsyncEngine, one_time: OneTimeUses) -> None:
        super().__init__(engine)
        self._one_time = one_time

    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        return await self._one_time.consume(kind, owner, value, expires_at)

    @staticmethod
    async def _insert_identity(conn: AsyncConnection, app: Application, identity: ManagedIdentity) -> None:
        await conn.execute(
            insert(t.applications).values(
                client_id=app.client_id, tenant_id=app.tenant_id, object_id=app.object_id,
                display_name=app.display_name, enabled=app.enabled, identifier_uri=None, open_to_tenant=False,
                created_at=app.created_at, managed_resource_id=app.managed_resource_id,
            )
        )
        await conn.execute(
            insert(t.managed_identities).values(
                client_id=identity.client_id, tenant_id=identity.tenant_id, name=identity.name, kind=identity.kind,
                resource_id=identity.resource_id, host_id=identity.host_id, created_at=identity.created_at,
            )
        )

    # -- hosts -------------------------------------------------------------------------------------
    async def create_host(self, host: Host, identity_app: Application, identity: ManagedIdentity,
                          audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await self._insert_identity(conn, identity_app, identity)
                await conn.execute(
                    insert(t.hosts).values(
                        id=host.id, tenant_id=host.tenant_id, name=host.name, system_client_id=host.system_client_id,
                        created_at=host.created_at, enrolled_at=None, join_digest=host.join_digest,
                        join_expires_at=host.join_expires_at,
                    )
                )
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("host exists") from None

    async def get_host(self, tenant_id: str, ref: str) -> Host | None:
        col = t.hosts.c.id if is_guid(ref) else t.hosts.c.name
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.hosts).where(t.hosts.c.tenant_id == tenant_id, col == ref))).first()
        return _host(row) if row else None

    async def host_for_identity(self, tenant_id: str, system_client_id: str) -> Host | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.hosts).where(t.hosts.c.tenant_id == tenant_id,
                                          t.hosts.c.system_client_id == system_client_id)
                )
            ).first()
        return _host(row) if row else None

    async def list_hosts(self, tenant_id: str) -> Sequence[Host]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t.hosts).where(t.hosts.c.tenant_id == tenant_id).order_by(t.hosts.c.created_at)
                )
            ).all()
        return [_host(r) for r in rows]

    async def remove_host(self, tenant_id: str, host_id: str, audit: AuditEvent) -> bool:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(t.hosts).where(t.hosts.c.id == host_id, t.hosts.c.tenant_id == tenant_id))
            ).first()
            if row is None:
                return False
            # Explicit child deletes: SQLite only cascades when foreign keys are on for the connection.
            await drop_credentials_of(conn, Owner("host", host_id))
            await conn.execute(delete(t.workload_bindings).where(t.workload_bindings.c.host_id == host_id))
            await conn.execute(delete(t.identity_assignments).where(t.identity_assignments.c.host_id == host_id))
            await conn.execute(delete(t.hosts).where(t.hosts.c.id == host_id))
            await self._delete_identity(conn, row.system_client_id)
            await self._audit(conn, audit)
        return True

    async def set_join_token(self, host_id: str, digest: bytes, expires_at: float, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.hosts).where(t.hosts.c.id == host_id).values(join_digest=digest, join_expires_at=expires_at)
            )
            await self._audit(conn, audit)

    def enrolling(self, host_id: str, at: float) -> TransactionStep:
        """The host row's part of an enrollment, run inside the credential store's write of the first
        certificate: marks the host enrolled and drops its join token; False (nothing written) when
        it enrolled meanwhile, a race the caller lost."""

        async def step(tx: Transaction) -> bool:
            conn = cast(AsyncConnection, tx)
            res = await conn.execute(
                update(t.hosts)
                .where(t.hosts.c.id == host_id, t.hosts.c.enrolled_at.is_(None), t.hosts.c.join_digest.is_not(None))
                .values(enrolled_at=at, join_digest=None, join_expires_at=None)
            )
            return bool(res.rowcount == 1)

        return step

    # -- identities --------------------------------------------------------------------------------
    async def create_identity(self, identity_app: Application, identity: ManagedIdentity,
                              audit: AuditEvent) -> None:
        try:
            async with self.engine.begin() as conn:
                await self._insert_identity(conn, identity_app, identity)
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("identity exists") from None

    def _identities(self) -> Any:
        mi = t.managed_identities
        return select(*_IDENTITY_COLUMNS).select_from(
            mi.join(t.applications, t.applications.c.client_id == mi.c.client_id)
        )

    async def list_identities(self, tenant_id: str) -> Sequence[ManagedIdentity]:
        mi = t.managed_identities
        q = self._identities().where(mi.c.tenant_id == tenant_id).order_by(mi.c.created_at)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [_identity(r) for r in rows]

    async def get_identity(self, tenant_id: str, ref: str) -> ManagedIdentity | None:
        mi = t.managed_identities
        # Resource ids compare without case, as Azure's do.
        cond: Any = or_(func.lower(mi.c.resource_id) == ref.lower(), and_(mi.c.kind == "user", mi.c.name == ref))
        if is_guid(ref):
            cond = or_(cond, mi.c.client_id == ref, t.applications.c.object_id == ref)
        async with self.engine.connect() as conn:
            row = (await conn.execute(self._identities().where(mi.c.tenant_id == tenant_id, cond))).first()
        return _identity(row) if row else None

    @staticmethod
    async def _delete_identity(conn: AsyncConnection, client_id: str) -> None:
        await conn.execute(delete(t.workload_bindings).where(t.workload_bindings.c.identity_client_id == client_id))
        await conn.execute(
            delete(t.identity_assignments).where(t.identity_assignments.c.identity_client_id == client_id)
        )
        await conn.execute(delete(t.role_assignments).where(t.role_assignments.c.principal_client_id == client_id))
        # Rows of either owner kind: a client id names one principal, and rows an earlier build let the
        # application routes write for an identity must not outlive it.
        await drop_credentials_of(conn, Owner("identity", client_id))
        ita = t.identity_token_audiences
        await conn.execute(delete(ita).where(ita.c.owner_id == client_id))
        await conn.execute(delete(t.managed_identities).where(t.managed_identities.c.client_id == client_id))
        await conn.execute(delete(t.applications).where(t.applications.c.client_id == client_id))

    async def delete_identity(self, tenant_id: str, client_id: str, audit: AuditEvent) -> bool:
        mi = t.managed_identities
        async with self.engine.begin() as conn:
            found = (
                await conn.execute(
                    select(mi.c.client_id).where(mi.c.client_id == client_id, mi.c.tenant_id == tenant_id,
                                                 mi.c.kind == "user")
                )
            ).first()
            if found is None:
                return False
            await self._delete_identity(conn, client_id)
            await self._audit(conn, audit)
        return True

    async def assign(self, host_id: str, identity_client_id: str, created_at: float, audit: AuditEvent) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(t.identity_assignments).values(
                        host_id=host_id, identity_client_id=identity_client_id, created_at=created_at
                    )
                )
                await self._audit(conn, audit)
        except IntegrityError:
            return False
        return True

    async def unassign(self, host_id: str, identity_client_id: str, audit: AuditEvent) -> bool:
        ia, wb = t.identity_assignments, t.workload_bindings
        async with self.engine.begin() as conn:
            res = await conn.execute(
                delete(ia).where(ia.c.host_id == host_id, ia.c.identity_client_id == identity_client_id)
            )
            if res.rowcount != 1:
                return False
            await conn.execute(delete(wb).where(wb.c.host_id == host_id, wb.c.identity_client_id == identity_client_id))
            await self._audit(conn, audit)
        return True

    async def host_identities(self, host_id: str) -> Sequence[ManagedIdentity]:
        mi, ia = t.managed_identities, t.identity_assignments
        assigned = select(ia.c.identity_client_id).where(ia.c.host_id == host_id)
        q = self._identities().where(
            or_(and_(mi.c.kind == "system", mi.c.host_id == host_id), mi.c.client_id.in_(assigned))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        found = [_identity(r) for r in rows]
        return sorted(found, key=lambda i: (i.kind != "system", i.name))

    # -- bindings ----------------------------------------------------------------------------------
    async def add_binding(self, binding: WorkloadBinding, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(t.workload_bindings).values(
                    id=binding.id, tenant_id=binding.tenant_id, host_id=binding.host_id,
                    identity_client_id=binding.identity_client_id, uid=binding.uid, gid=binding.gid,
                    exe=binding.exe, unit=binding.unit, created_at=binding.created_at,
                )
            )
            await self._audit(conn, audit)

    async def list_bindings(self, tenant_id: str, *, host_id: str | None = None,
                            identity_client_id: str | None = None) -> Sequence[WorkloadBinding]:
        wb = t.workload_bindings
        q = select(wb).where(wb.c.tenant_id == tenant_id).order_by(wb.c.created_at)
        if host_id is not None:
            q = q.where(wb.c.host_id == host_id)
        if identity_client_id is not None:
            q = q.where(wb.c.identity_client_id == identity_client_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [_binding(r) for r in rows]

    async def remove_binding(self, tenant_id: str, binding_id: str, audit: AuditEvent) -> bool:
        wb = t.workload_bindings
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(wb).where(wb.c.id == binding_id, wb.c.tenant_id == tenant_id))
            if res.rowcount != 1:
                return False
            await self._audit(conn, audit)
        return True
