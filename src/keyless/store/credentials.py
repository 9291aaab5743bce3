"""Credentials on SQLAlchemy Core (`keyless.domain.credentials.CredentialStore`): the one module that
writes the `client_secrets`, `certificates` and `federated_credentials` tables, for every owner kind
(application, identity, host), each add, revocation and removal in one transaction with its audit
record. A change of another aggregate that commits with a credential write (a host's enrollment)
runs inside that transaction as a step (`within`); an owner's deletion (`store.applications`,
`store.hosts`), a leak report (`store.leaks`) and the posture report's CA verdicts (`store.posture`)
change credential rows through the functions here that take the caller's connection, so no other
module holds SQL that writes these tables. It also answers
the inventory across owners and the certificates of the hosts entitled to act for an identity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, cast

from sqlalchemy import Row, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from keyless.domain.credentials import Credential, CredentialKind, LastUse, Owner, TransactionStep, credential_of
from keyless.domain.federation import FederatedCredential, OwnerType, ReplayMode
from keyless.domain.model import AuditEvent, Certificate, ClientSecret
from keyless.domain.ports import UniqueViolation
from keyless.store import tables as t
from keyless.store.base import LAST_USE_TABLES, SqlRepository

fc = t.federated_credentials


def secret_of(row: Row[Any]) -> ClientSecret:
    return ClientSecret(
        id=row.id, client_id=row.client_id, hint=row.hint, digest=bytes(row.digest), pepper_id=row.pepper_id,
        created_at=row.created_at, expires_at=row.expires_at, last_used_at=row.last_used_at,
        display_name=row.display_name,
    )


def certificate_of(row: Row[Any]) -> Certificate:
    """A `certificates` row of either owner kind."""
    return Certificate(
        id=row.id, owner_id=row.owner_id, x5t=row.x5t, x5t_s256=row.x5t_s256, der=bytes(row.der),
        subject=row.subject, key_type=row.key_type, key_size=row.key_size, not_before=row.not_before,
        not_after=row.not_after, created_at=row.created_at, last_used_at=row.last_used_at,
        display_name=row.display_name, owner_kind="host" if row.owner_kind == "host" else "application",
    )


def federated_credential(row: Row[Any]) -> FederatedCredential:
    return FederatedCredential(
        id=row.id, tenant_id=row.tenant_id, owner_type=cast(OwnerType, row.owner_type), owner_id=row.owner_id,
        name=row.name, issuer=row.issuer, subject=row.subject, subject_is_pattern=row.subject_is_pattern,
        audience=row.audience, claims=json.loads(row.claims), algorithms=tuple(row.algorithms.split(",")),
        replay=cast(ReplayMode, row.replay), max_token_lifetime=row.max_token_lifetime,
        description=row.description, created_at=row.created_at,
    )


async def entitled_certificates(conn: AsyncConnection, client_id: str) -> tuple[Certificate, ...]:
    """The certificates of every host that may act for the managed identity `client_id` right now:
    its own host (system-assigned) and the hosts it is assigned to (user-assigned). Called by the
    token endpoint's client lookup, so the entitlement is checked on every request."""
    c = t.certificates
    assigned = select(t.identity_assignments.c.host_id).where(t.identity_assignments.c.identity_client_id == client_id)
    owning = select(t.hosts.c.id).where(t.hosts.c.system_client_id == client_id)
    rows = (await conn.execute(select(c).where(
        c.c.owner_kind == "host", or_(c.c.owner_id.in_(assigned), c.c.owner_id.in_(owning)), c.c.revoked_at.is_(None)
    ))).all()
    return tuple(certificate_of(r).for_identity(client_id) for r in rows)


def _of_host(host_id: str) -> Any:
    c = t.certificates
    return and_(c.c.owner_kind == "host", c.c.owner_id == host_id)


async def drop_credentials_of(conn: AsyncConnection, owner: Owner) -> None:
    """Delete every credential of `owner`, of every kind and state, in the caller's transaction (the
    owner's own deletion, audited there). A client id names one principal: rows of either owner kind
    an earlier build wrote for it go too."""
    c = t.certificates
    if owner.kind == "host":
        await conn.execute(delete(c).where(_of_host(owner.id)))
        return
    await conn.execute(delete(t.client_secrets).where(t.client_secrets.c.client_id == owner.id))
    await conn.execute(delete(c).where(of_application(owner.id)))
    await conn.execute(delete(fc).where(fc.c.owner_id == owner.id))


async def revoke_secret_in(conn: AsyncConnection, secret_id: str, at: float) -> bool:
    """Revoke a secret in the caller's transaction (a leak report, recorded with it); False when it
    was revoked already (another report a moment ago)."""
    cs = t.client_secrets
    res = await conn.execute(update(cs).where(cs.c.id == secret_id, cs.c.revoked_at.is_(None)).values(revoked_at=at))
    return res.rowcount == 1


async def keep_ca_verdicts(conn: AsyncConnection, verdicts: Sequence[Mapping[str, Any]], ca_thumbprint: str) -> None:
    """Keep each certificate's "issued by the installation's CA" verdict (`cid`, `issued`) with its row,
    for the CA of `ca_thumbprint` (migration 0017), in the caller's transaction (the posture report)."""
    c = t.certificates
    await conn.execute(update(c).where(c.c.id == bindparam("cid"))
                       .values(ca_issued=bindparam("issued"), ca_checked=ca_thumbprint), verdicts)


async def read_host_certificates(conn: AsyncConnection, host_id: str) -> list[Certificate]:
    c = t.certificates
    rows = (await conn.execute(select(c).where(_of_host(host_id)).order_by(c.c.created_at))).all()
    return [certificate_of(r) for r in rows]


def _owned_by(tenant_id: str, client_id: str) -> Any:
    return select(t.applications.c.client_id).where(
        t.applications.c.client_id == client_id, t.applications.c.tenant_id == tenant_id
    )


def of_application(client_id: str) -> Any:
    """The certificate rows an application owns (of every state)."""
    c = t.certificates
    return and_(c.c.owner_kind == "application", c.c.owner_id == client_id)


def _app_owner_kind(row: Row[Any]) -> Literal["application", "identity"]:
    return "application" if row.managed_resource_id is None else "identity"


async def _inventory(conn: AsyncConnection, tenant_id: str, owner_id: str | None) -> list[Credential]:
    """Every unrevoked credential of the tenant (of one owner id, when given), of every kind."""
    apps, cs, c = t.applications, t.client_secrets, t.certificates
    q_secrets = (select(cs, apps.c.managed_resource_id).join(apps, apps.c.client_id == cs.c.client_id)
                 .where(apps.c.tenant_id == tenant_id, cs.c.revoked_at.is_(None)))
    q_app_certs = (select(c, apps.c.managed_resource_id).join(apps, apps.c.client_id == c.c.owner_id)
                   .where(c.c.owner_kind == "application", apps.c.tenant_id == tenant_id, c.c.revoked_at.is_(None)))
    q_host_certs = (select(c).join(t.hosts, t.hosts.c.id == c.c.owner_id)
                    .where(c.c.owner_kind == "host", t.hosts.c.tenant_id == tenant_id, c.c.revoked_at.is_(None)))
    q_federated = select(fc).where(fc.c.tenant_id == tenant_id)
    if owner_id is not None:
        q_secrets = q_secrets.where(cs.c.client_id == owner_id)
        q_app_certs = q_app_certs.where(c.c.owner_id == owner_id)
        q_host_certs = q_host_certs.where(c.c.owner_id == owner_id)
        q_federated = q_federated.where(fc.c.owner_id == owner_id)
    found = [_used(credential_of(secret_of(r), owner_kind=_app_owner_kind(r)), r)
             for r in (await conn.execute(q_secrets))]
    found += [_used(credential_of(certificate_of(r), owner_kind=_app_owner_kind(r)), r)
              for r in (await conn.execute(q_app_certs))]
    found += [_used(credential_of(certificate_of(r)), r) for r in (await conn.execute(q_host_certs))]
    found += [
        _used(Credential(id=r.id, kind="federated", owner=Owner(r.owner_type, r.owner_id), display_name=r.name,
                         created_at=r.created_at, label=f"{r.issuer} {r.subject}"), r)
        for r in (await conn.execute(q_federated))
    ]
    return found


def _used(credential: Credential, row: Any) -> Credential:
    """The credential with its row's last use (time and source address), whatever its kind."""
    return replace(credential, last_used_at=row.last_used_at, last_used_from=row.last_used_from)


class SqlCredentialStore(SqlRepository):
    async def credentials(self, tenant_id: str, owner: Owner | None = None) -> Sequence[Credential]:
        async with self.engine.connect() as conn:
            found = await _inventory(conn, tenant_id, owner.id if owner is not None else None)
        if owner is not None:
            found = [x for x in found if x.owner == owner]
        return sorted(found, key=lambda x: (x.created_at, x.id))

    # -- secrets -----------------------------------------------------------------------------------
    async def list_secrets(self, tenant_id: str, client_id: str) -> Sequence[ClientSecret]:
        cs = t.client_secrets
        q = (
            select(cs)
            .select_from(cs.join(t.applications))
            .where(t.applications.c.tenant_id == tenant_id, cs.c.client_id == client_id, cs.c.revoked_at.is_(None))
            .order_by(cs.c.created_at)
        )
        async with self.engine.connect() as conn:
            return [secret_of(r) for r in (await conn.execute(q)).all()]

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

    async def _revoke(self, table: Any, owner: Any, tenant_id: str, client_id: str, row_id: str,
                      audit: AuditEvent) -> bool:
        return await self._change_one(
            update(table)
            .where(table.c.id == row_id, owner.in_(_owned_by(tenant_id, client_id)), table.c.revoked_at.is_(None))
            .values(revoked_at=audit.time), audit)

    async def revoke_secret(self, tenant_id: str, client_id: str, secret_id: str, audit: AuditEvent) -> bool:
        cs = t.client_secrets
        return await self._revoke(cs, cs.c.client_id, tenant_id, client_id, secret_id, audit)

    async def mark_used(self, kind: CredentialKind, uses: Mapping[str, LastUse]) -> None:
        await self._mark_used(LAST_USE_TABLES[kind], uses)

    # -- certificates ------------------------------------------------------------------------------
    async def list_certificates(self, tenant_id: str, client_id: str) -> Sequence[Certificate]:
        cc = t.certificates
        q = (
            select(cc)
            .select_from(cc.join(t.applications, t.applications.c.client_id == cc.c.owner_id))
            .where(t.applications.c.tenant_id == tenant_id, of_application(client_id), cc.c.revoked_at.is_(None))
            .order_by(cc.c.created_at)
        )
        async with self.engine.connect() as conn:
            return [certificate_of(r) for r in (await conn.execute(q)).all()]

    async def host_certificates(self, host_id: str) -> Sequence[Certificate]:
        async with self.engine.connect() as conn:
            return await read_host_certificates(conn, host_id)

    async def add_certificate(self, tenant_id: str, certificate: Certificate, audit: AuditEvent, *,
                              within: TransactionStep | None = None, keep: str | None = None,
                              ca_verdict: tuple[bool, str] | None = None) -> bool:
        cert = certificate
        async with self.engine.begin() as conn:
            if within is not None and not await within(conn):
                await conn.rollback()
                return False
            if keep is not None:
                c = t.certificates
                owned = and_(c.c.owner_kind == cert.owner_kind, c.c.owner_id == cert.owner_id)
                await conn.execute(delete(c).where(owned, c.c.id != keep))
            await conn.execute(
                insert(t.certificates).values(
                    id=cert.id, owner_kind=cert.owner_kind, owner_id=cert.owner_id, x5t=cert.x5t,
                    x5t_s256=cert.x5t_s256, der=cert.der,
                    subject=cert.subject, key_type=cert.key_type, key_size=cert.key_size,
                    not_before=cert.not_before, not_after=cert.not_after, display_name=cert.display_name,
                    created_at=cert.created_at, last_used_at=None, revoked_at=None,
                    ca_issued=None if ca_verdict is None else ca_verdict[0],
                    ca_checked=None if ca_verdict is None else ca_verdict[1],
                )
            )
            await self._audit(conn, audit)
        return True

    async def revoke_certificate(
        self, tenant_id: str, client_id: str, certificate_id: str, audit: AuditEvent
    ) -> bool:
        cc = t.certificates
        return await self._revoke(cc, cc.c.owner_id, tenant_id, client_id, certificate_id, audit)


    # -- federated credentials -------------------------------------------------------------------
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
                await self._audit(conn, audit)
        except IntegrityError:
            raise UniqueViolation("federated credential name in use") from None

    async def remove_federated_credential(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, credential_id: str, audit: AuditEvent
    ) -> bool:
        return await self._change_one(
            delete(fc).where(fc.c.tenant_id == tenant_id, fc.c.owner_type == owner_type, fc.c.owner_id == owner_id,
                             fc.c.id == credential_id), audit)

    # -- reaping (keyless.directory.reaping) -------------------------------------------------------
    async def disable_unused(self, tenant_id: str, credential: Credential, used_before: float,
                             audit: AuditEvent) -> bool:
        """Revoke an application's or identity's secret or certificate, only if it is still active and
        still unused since `used_before` (a sign-in between the scan and now saves it)."""
        table = {"secret": t.client_secrets, "certificate": t.certificates}[credential.kind]
        owner = table.c.client_id if credential.kind == "secret" else table.c.owner_id
        return await self._change_one(
            update(table).where(
                table.c.id == credential.id, owner.in_(_owned_by(tenant_id, credential.owner.id)),
                table.c.revoked_at.is_(None), func.coalesce(table.c.last_used_at, table.c.created_at) <= used_before,
            ).values(revoked_at=audit.time), audit)

    async def revoked_before(self, tenant_id: str,
                             before: float) -> Sequence[tuple[CredentialKind, str, str, float]]:
        """(kind, id, owner client id, revoked at) of the applications' and identities' secrets and
        certificates revoked before `before`."""
        apps, cs, c = t.applications, t.client_secrets, t.certificates
        async with self.engine.connect() as conn:
            secrets = await conn.execute(select(cs.c.id, cs.c.client_id, cs.c.revoked_at)
                                         .join(apps, apps.c.client_id == cs.c.client_id)
                                         .where(apps.c.tenant_id == tenant_id, cs.c.revoked_at < before))
            certs = await conn.execute(select(c.c.id, c.c.owner_id, c.c.revoked_at)
                                       .join(apps, apps.c.client_id == c.c.owner_id)
                                       .where(c.c.owner_kind == "application", apps.c.tenant_id == tenant_id,
                                              c.c.revoked_at < before))
            return [("secret", r.id, r.client_id, r.revoked_at) for r in secrets] + [
                ("certificate", r.id, r.owner_id, r.revoked_at) for r in certs]

    async def delete_revoked(self, tenant_id: str, kind: CredentialKind, credential_id: str, owner_id: str,
                             before: float, audit: AuditEvent) -> bool:
        table = {"secret": t.client_secrets, "certificate": t.certificates}[kind]
        owner = table.c.client_id if kind == "secret" else table.c.owner_id
        return await self._change_one(delete(table).where(
            table.c.id == credential_id, owner.in_(_owned_by(tenant_id, owner_id)), table.c.revoked_at < before), audit)
