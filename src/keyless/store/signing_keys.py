"""Token-signing keys on SQLAlchemy Core (`keyless.domain.ports.SigningKeyStore`); the private half
is stored sealed under the KEK (`keyless.oauth.keyring`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, select, update

from keyless.domain.model import AuditEvent, SigningKey
from keyless.store import tables as t
from keyless.store.base import SqlRepository


def _key(row: Row[Any]) -> SigningKey:
    return SigningKey(
        kid=row.kid, tenant_id=row.tenant_id, alg=row.alg, public_jwk=dict(row.public_jwk),
        sealed_private=bytes(row.sealed_private), created_at=row.created_at,
        activates_at=row.activates_at, retire_at=row.retire_at,
    )


class SqlSigningKeyStore(SqlRepository):
    async def signing_keys(self, tenant_id: str) -> Sequence[SigningKey]:
        sk = t.signing_keys
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(sk).where(sk.c.tenant_id == tenant_id).order_by(sk.c.activates_at)
            )).all()
        return [_key(r) for r in rows]

    async def add_signing_key(self, key: SigningKey, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(t.signing_keys).values(
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
