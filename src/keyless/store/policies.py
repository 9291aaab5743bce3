"""Credential policies on SQLAlchemy Core (`keyless.domain.policies.PolicyStore`).

One row per tenant default (`client_id` "") and per application override, holding the policy as its
JSON document: the rules are read whole, never queried by field, and a new rule needs no migration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keyless.domain.model import AuditEvent
from keyless.domain.policies import Policy
from keyless.domain.policy_document import policy_from_json, policy_to_json
from keyless.domain.ports import UniqueViolation
from keyless.store import tables as t
from keyless.store.base import SqlRepository

TENANT_DEFAULT = ""


class SqlPolicyStore(SqlRepository):
    @staticmethod
    def _key(tenant_id: str, client_id: str | None) -> ColumnElement[bool]:
        p = t.credential_policies.c
        return (p.tenant_id == tenant_id) & (p.client_id == (client_id or TENANT_DEFAULT))

    async def get_policy(self, tenant_id: str, client_id: str | None) -> Policy | None:
        p = t.credential_policies
        async with self.engine.connect() as conn:
            doc = (await conn.execute(select(p.c.document).where(self._key(tenant_id, client_id)))).scalar()
        return None if doc is None else policy_from_json(json.loads(doc))

    async def policies(self, tenant_id: str) -> Mapping[str | None, Policy]:
        p = t.credential_policies
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(p.c.client_id, p.c.document).where(p.c.tenant_id == tenant_id))).all()
        return {(r.client_id or None): policy_from_json(json.loads(r.document)) for r in rows}

    async def put_policy(self, tenant_id: str, client_id: str | None, policy: Policy, audit: AuditEvent) -> None:
        p = t.credential_policies
        doc = json.dumps(policy_to_json(policy), sort_keys=True)
        try:
            async with self.engine.begin() as conn:
                done = await conn.execute(update(p).where(self._key(tenant_id, client_id))
                                          .values(document=doc, updated_at=audit.time))
                if not done.rowcount:
                    await conn.execute(insert(p).values(tenant_id=tenant_id, client_id=client_id or TENANT_DEFAULT,
                                                        document=doc, updated_at=audit.time))
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("a concurrent write created this policy") from None

    async def delete_policy(self, tenant_id: str, client_id: str | None, audit: AuditEvent) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(delete(t.credential_policies).where(self._key(tenant_id, client_id)))
            if not done.rowcount:
                return False
            await self._audit(conn, audit)
        return True
