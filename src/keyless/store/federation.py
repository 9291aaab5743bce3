"""`FederationStore` on SQLAlchemy Core: federated identity credentials, each write with its audit row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.domain.federation import FederatedCredential, OwnerType, ReplayMode
from keyless.domain.model import AuditEvent
from keyless.domain.ports import UniqueViolation
from keyless.store import tables as t
from keyless.store.base import insert_audit

fc = t.federated_credentials
ita = t.identity_token_audiences


def federated_credential(row: Row[Any]) -> FederatedCredential:
    return FederatedCredential(
        id=row.id, tenant_id=row.tenant_id, owner_type=cast(OwnerType, row.owner_type), owner_id=row.owner_id,
        name=row.name, issuer=row.issuer, subject=row.subject, subject_is_pattern=row.subject_is_pattern,
        audience=row.audience, claims=json.loads(row.claims), algorithms=tuple(row.algorithms.split(",")),
        replay=cast(ReplayMode, row.replay), max_token_lifetime=row.max_token_lifetime,
        description=row.description, created_at=row.created_at,
    )


class SqlFederationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

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

    async def add_federated_credential(self, credential: FederatedCredential, audit: AuditEvent) -> None:
        c = credential
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(fc).values(
                        id=c.id, tenant_id=c.tenant_id, owner_type=c.owner_type, owner_id=c.owner_id, name=c.name,
                        issuer=c.issuer, subject=c.subject, subject_is_pattern=c.subject_is_pattern,
                        audience=c.audience, claims=json.dumps(dict(c.claims), sort_keys=True),
                        algorithms=",".join(c.algorithms), replay=c.replay, max_token_lifetime=c.max_token_lifetime,
                        description=c.description, created_at=c.created_at,
                    )
                )
                await insert_audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("federated credential name in use") from None

    async def remove_federated_credential(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, credential_id: str, audit: AuditEvent
    ) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(
                delete(fc).where(fc.c.tenant_id == tenant_id, fc.c.owner_type == owner_type,
                                 fc.c.owner_id == owner_id, fc.c.id == credential_id)
            )
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await insert_audit(conn, audit)
        return True

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
                await insert_audit(conn, audit)
        except IntegrityError:
            return False
        return True

    async def remove_identity_token_audience(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, audience: str, audit: AuditEvent
    ) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(
                delete(ita).where(ita.c.tenant_id == tenant_id, ita.c.owner_type == owner_type,
                                  ita.c.owner_id == owner_id, ita.c.audience == audience)
            )
            if res.rowcount != 1:
                await conn.rollback()
                return False
            await insert_audit(conn, audit)
        return True
