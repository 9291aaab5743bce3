"""`FederationStore` on SQLAlchemy Core: reads of federated identity credentials (the credential store,
`keyless.store.credentials`, writes them, like every credential) and the identity-token audiences of
each owner, each write with its audit row."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from keyless.domain.federation import FederatedCredential, OwnerType
from keyless.domain.model import AuditEvent
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.credentials import federated_credential

__all__ = ["SqlFederationStore", "federated_credential"]

fc = t.federated_credentials
ita = t.identity_token_audiences


class SqlFederationStore(SqlRepository):

    async def federated_credentials(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str
    ) -> Sequence[FederatedCredential]:
        q = (
            select(fc)
            .where(fc.c.tenant_id == tenant_id, fc.c.owner_type == owner_type, fc.c.owner_id == owner_id)
            .order_by(fc.c.created_at, fc.c.name)
        )
        async with self.engine.connect() as conn:
            return [federated_credential(r) for r in (await conn.execute(q)).all()]

    async def list_federated_credentials(self, tenant_id: str) -> Sequence[FederatedCredential]:
        q = select(fc).where(fc.c.tenant_id == tenant_id).order_by(fc.c.owner_id, fc.c.created_at, fc.c.name)
        async with self.engine.connect() as conn:
            return [federated_credential(r) for r in (await conn.execute(q)).all()]

    async def identity_token_audiences(self, tenant_id: str, owner_type: OwnerType, owner_id: str) -> frozenset[str]:
        q = select(ita.c.audience).where(ita.c.tenant_id == tenant_id, ita.c.owner_type == owner_type,
                                         ita.c.owner_id == owner_id)
        async with self.engine.connect() as conn:
            return frozenset(r.audience for r in (await conn.execute(q)).all())

    async def add_identity_token_audience(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, audience: str, audit: AuditEvent
    ) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(ita).values(tenant_id=tenant_id, owner_type=owner_type, owner_id=owner_id,
                                                      audience=audience, created_at=audit.time))
                await self._audit(conn, audit)
        except IntegrityError:
            return False
        return True

    async def remove_identity_token_audience(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, audience: str, audit: AuditEvent
    ) -> bool:
        return await self._change_one(
            delete(ita).where(ita.c.tenant_id == tenant_id, ita.c.owner_type == owner_type, ita.c.owner_id == owner_id,
                              ita.c.audience == audience), audit)
