"""The posture report's facts in aggregated queries (`keyless.domain.posture.PostureStore`).

A page of workloads costs a fixed number of queries whatever its size (no query per application):
the page of applications (with their identity and owning host), then the secrets, certificates,
federated credentials, assigned hosts and sign-in usage of every workload on the page at once, each
selected by the page's client-id range; and the tenant's host map (which source addresses each host's
agent signs in from). The score is two grouped counts over the whole tenant. docs/benchmarks.md
("Posture") has the figures for 20,000 applications on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyless.domain.credentials import Credential, Owner
from keyless.domain.posture import (
    AssessedCredential,
    CredentialFlags,
    IssuerCheck,
    LeakNote,
    PostureFacts,
    SignInUsage,
    SignInWindow,
    Workload,
    WorkloadKind,
)
from keyless.oauth.federation.rules import lint
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.credentials import keep_ca_verdicts
from keyless.store.federation import federated_credential
from keyless.store.leak_tables import leaks as lk

apps, mi, cs, certs, fc, sl, hosts = (t.applications, t.managed_identities, t.client_secrets, t.certificates,
                                      t.federated_credentials, t.signin_log, t.hosts)


def _in_range(col: Any, first: str, last: str) -> Any:
    return and_(col >= first, col <= last)


async def _window(conn: AsyncConnection, tenant_id: str, since: float) -> SignInWindow:
    """The tenant's successful sign-ins since `since` in one scan of the window (index
    `ix_signin_log_tenant_time`), grouped by (client, credential, source, credential type) and only
    then joined to the applications (a few thousand groups, not every sign-in): each workload's and
    credential's use, the host map and the score's sign-ins by rung, shared by every page of a report.
    A managed identity's sign-ins count as `managed_identity` whatever its host presented; a client no
    longer in the directory counts for no rung."""
    grouped = (select(sl.c.client_id, sl.c.credential_id, sl.c.source, sl.c.credential_type,
                      func.count().label("n"), func.max(sl.c.time).label("last"))
               .where(sl.c.tenant_id == tenant_id, sl.c.time >= since, sl.c.result == "success",
                      sl.c.client_id.is_not(None))
               .group_by(sl.c.client_id, sl.c.credential_id, sl.c.source, sl.c.credential_type)).subquery()
    q = (select(grouped.c.client_id, grouped.c.credential_id, grouped.c.source, grouped.c.credential_type,
                grouped.c.n, grouped.c.last, apps.c.client_id.is_not(None).label("known"),
                apps.c.managed_resource_id.is_not(None).label("managed"))
         .select_from(grouped.outerjoin(apps, apps.c.client_id == grouped.c.client_id)))
    # The host map's evidence: a host's agent signs in as the host's own identity, or with the host's
    # certificate for an identity assigned to it.
    as_host = {r.system_client_id: r.name for r in await conn.execute(
        select(hosts.c.system_client_id, hosts.c.name).where(hosts.c.tenant_id == tenant_id))}
    host_cert = {r.id: r.name for r in await conn.execute(
        select(certs.c.id, hosts.c.name).join(hosts, and_(certs.c.owner_kind == "host", hosts.c.id == certs.c.owner_id))
        .where(hosts.c.tenant_id == tenant_id))}
    usage, by_rung, seen_at = SignInUsage(), dict[str, int](), defaultdict[str, set[str]](set)
    add = usage.add
    for client_id, credential_id, source, kind, n, last, known, managed in (await conn.execute(q)).all():
        add(client_id, credential_id, source, int(n), float(last))
        rung = "managed_identity" if managed else kind
        if known and rung:
            by_rung[rung] = by_rung.get(rung, 0) + int(n)
        if source is not None:
            for name in (as_host.get(client_id), host_cert.get(credential_id)):
                if name is not None:
                    seen_at[source].add(name)
    host_of = {source: next(iter(names)) for source, names in seen_at.items() if len(names) == 1}
    return SignInWindow(usage, host_of, by_rung)


async def _leaks(conn: AsyncConnection, tenant_id: str, first: str, last: str) -> dict[str, list[LeakNote]]:
    """Leak reports about the page's secrets, newest first (one per secret)."""
    q = (select(lk.c.client_id, lk.c.secret_id, lk.c.hint, lk.c.location, lk.c.reported_at)
         .where(lk.c.tenant_id == tenant_id, _in_range(lk.c.client_id, first, last))
         .order_by(lk.c.reported_at.desc()))
    found: dict[str, list[LeakNote]] = defaultdict(list)
    seen: set[str] = set()
    for r in (await conn.execute(q)).all():
        if r.secret_id not in seen:
            seen.add(r.secret_id)
            found[r.client_id].append(LeakNote(r.secret_id, r.hint, r.location, r.reported_at))
    return found


async def ca_verdicts(conn: AsyncConnection, rows: Sequence[Any], internal_ca: IssuerCheck | None) -> dict[str, bool]:
    """Each certificate's "issued by the installation's CA", by id: the verdict kept with the row when
    it is about this CA (migration 0017), else checked now (the CA's signature over the DER) and kept,
    so an estate's certificates are each checked once, not on every server start. Without
    `internal_ca` nothing is known."""
    if internal_ca is None:
        return {}
    thumbprint = internal_ca.ca_thumbprint
    found = {r.id: bool(r.ca_issued) for r in rows if r.ca_checked == thumbprint and r.ca_issued is not None}
    unchecked = [r.id for r in rows if r.id not in found]
    if unchecked:
        ders = await conn.execute(select(certs.c.id, certs.c.der).where(certs.c.id.in_(unchecked)))
        checked = [{"cid": r.id, "issued": internal_ca(bytes(r.der))} for r in ders]
        found.update((v["cid"], v["issued"]) for v in checked)
        await keep_ca_verdicts(conn, checked, thumbprint)
    return found


class SqlPostureStore(SqlRepository):
    async def posture_facts(self, tenant_id: str, *, usage: SignInUsage, after: str | None, limit: int,
                            client_id: str | None = None,
                            internal_ca: IssuerCheck | None = None) -> PostureFacts:
        page_q = (select(apps.c.client_id, apps.c.display_name, apps.c.created_at, apps.c.identifier_uri,
                         apps.c.managed_resource_id, mi.c.kind.label("identity_kind"), hosts.c.name.label("host"))
                  .select_from(apps.outerjoin(mi, mi.c.client_id == apps.c.client_id)
                               .outerjoin(hosts, hosts.c.id == mi.c.host_id))
                  .where(apps.c.tenant_id == tenant_id).order_by(apps.c.client_id).limit(limit + 1))
        if after is not None:
            page_q = page_q.where(apps.c.client_id > after)
        if client_id is not None:
            page_q = page_q.where(apps.c.client_id == client_id)
        async with self.engine.connect() as conn:
            page = (await conn.execute(page_q)).all()
            more = len(page) > limit
            page = page[:limit]
            if not page:
                return PostureFacts((), None)
            first, last = page[0].client_id, page[-1].client_id
            leaks = await _leaks(conn, tenant_id, first, last)
            creds = await self._credentials(conn, tenant_id, first, last, internal_ca, leaks, usage)
            assigned = await self._assigned_hosts(conn, first, last)
            await conn.commit()  # the verdicts checked for this page, if any (`ca_verdicts`)
        workloads = []
        for cid, name, created_at, uri, managed, identity_kind, host in page:  # page_q's columns, in order
            kind: WorkloadKind = "identity" if managed is not None else "application"
            n, sources, last_at = usage.of_client(cid)
            on = assigned.get(cid)
            identity_hosts = tuple(dict.fromkeys(([host] if host else []) + on)) if on else (host,) if host else ()
            workloads.append(Workload(
                client_id=cid, display_name=name, kind=kind, created_at=created_at,
                credentials=tuple(creds.get(cid, ())), identity_kind=identity_kind, hosts=identity_hosts, signins=n,
                sources=sources, last_signin_at=last_at, resource=uri is not None, leaks=tuple(leaks.get(cid, ())),
            ))
        return PostureFacts(tuple(workloads), page[-1].client_id if more else None)

    async def signin_window(self, tenant_id: str, since: float) -> SignInWindow:
        async with self.engine.connect() as conn:
            return await _window(conn, tenant_id, since)

    @staticmethod
    async def _assigned_hosts(conn: AsyncConnection, first: str, last: str) -> dict[str, list[str]]:
        ia = t.identity_assignments
        q = (select(ia.c.identity_client_id, hosts.c.name).join(hosts, hosts.c.id == ia.c.host_id)
             .where(_in_range(ia.c.identity_client_id, first, last)).order_by(hosts.c.name))
        found: dict[str, list[str]] = defaultdict(list)
        for r in (await conn.execute(q)).all():
            found[r.identity_client_id].append(r.name)
        return found

    @staticmethod
    async def _credentials(conn: AsyncConnection, tenant_id: str, first: str, last: str,
                           internal_ca: IssuerCheck | None, leaks: Mapping[str, list[LeakNote]],
                           usage: SignInUsage) -> dict[str, list[AssessedCredential]]:
        """The unrevoked secrets (marked when a leak was reported and not revoked, `keyless scan`),
        application certificates and federated credentials of the page's workloads, by client id.
        Rows of another tenant's clients in the range are dropped by the caller's lookup (the page's
        client ids are this tenant's). Each comes with its use in the window, from `usage`."""
        found: dict[str, list[AssessedCredential]] = defaultdict(list)
        used = usage.of_credential
        leaked = {n.secret_id for notes in leaks.values() for n in notes}
        q_secrets = (select(cs.c.id, cs.c.client_id, cs.c.hint, cs.c.display_name, cs.c.created_at,
                            cs.c.expires_at, cs.c.last_used_at)
                     .where(_in_range(cs.c.client_id, first, last), cs.c.revoked_at.is_(None)))
        # Rows unpacked by position (q_secrets' and q_certs' columns, in order): a Row's attribute by name
        # costs several times a tuple's item, and a report reads ~200,000 of them.
        for sid, client_id, hint, name, created_at, expires_at, last_used_at in (await conn.execute(q_secrets)).all():
            found[client_id].append(AssessedCredential(Credential(
                id=sid, kind="secret", owner=Owner("application", client_id), display_name=name,
                created_at=created_at, expires_at=expires_at, last_used_at=last_used_at, label=hint),
                used(sid), leaked=sid in leaked))
        q_certs = (select(certs.c.id, certs.c.owner_id, certs.c.x5t_s256, certs.c.display_name,
                          certs.c.created_at, certs.c.not_before, certs.c.not_after, certs.c.last_used_at,
                          certs.c.ca_issued, certs.c.ca_checked)
                   .where(certs.c.owner_kind == "application", _in_range(certs.c.owner_id, first, last),
                          certs.c.revoked_at.is_(None)))
        rows = (await conn.execute(q_certs)).all()
        verdicts = await ca_verdicts(conn, rows, internal_ca)
        for cid, owner_id, x5t_s256, name, created_at, not_before, not_after, last_used_at, _, _ in rows:
            found[owner_id].append(AssessedCredential(Credential(
                id=cid, kind="certificate", owner=Owner("application", owner_id), display_name=name,
                created_at=created_at, expires_at=not_after, not_before=not_before,
                last_used_at=last_used_at, label=x5t_s256), used(cid), from_internal_ca=verdicts.get(cid)))
        q_fed = select(fc).where(fc.c.tenant_id == tenant_id, _in_range(fc.c.owner_id, first, last))
        for f in (await conn.execute(q_fed)).all():
            found[f.owner_id].append(AssessedCredential(Credential(
                id=f.id, kind="federated", owner=Owner(f.owner_type, f.owner_id), display_name=f.name,
                created_at=f.created_at, last_used_at=f.last_used_at, label=f"{f.issuer} {f.subject}"),
                used(f.id), broad_subject=_broad(f)))
        return found

    async def credential_flags(self, tenant_id: str, now: float) -> Sequence[CredentialFlags]:
        """Workloads grouped by the kinds of working credential they hold (one grouped query)."""
        has_secret = exists().where(cs.c.client_id == apps.c.client_id, cs.c.revoked_at.is_(None),
                                    cs.c.expires_at > now)
        has_cert = exists().where(certs.c.owner_kind == "application", certs.c.owner_id == apps.c.client_id,
                                  certs.c.revoked_at.is_(None), certs.c.not_after > now)
        # owner_type and owner_id together use the index (an identity's own federated credentials do not
        # change its rung, so only an application's count).
        has_fed = exists().where(fc.c.tenant_id == tenant_id, fc.c.owner_type == "application",
                                 fc.c.owner_id == apps.c.client_id)
        managed = apps.c.managed_resource_id.is_not(None)
        cols = [case((managed, 1), else_=0).label("managed"), case((has_secret, 1), else_=0).label("s"),
                case((has_cert, 1), else_=0).label("c"), case((has_fed, 1), else_=0).label("f")]
        q = select(*cols, func.count().label("n")).where(apps.c.tenant_id == tenant_id).group_by(*cols)
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(q))
        return [CredentialFlags("identity" if r.managed else "application",
                                frozenset(k for k, flag in (("secret", r.s), ("certificate", r.c), ("federated", r.f))
                                          if flag), int(r.n)) for r in rows]

    async def signins_by_rung(self, tenant_id: str | None, since: float) -> Mapping[str, int]:
        """Successful sign-ins since `since` by rung (of one tenant, or of all with None): a managed
        identity's count as `managed_identity` whatever its host presented."""
        rung = case((apps.c.managed_resource_id.is_not(None), "managed_identity"),
                    else_=sl.c.credential_type).label("rung")
        q = (select(rung, func.count().label("n")).select_from(sl.join(apps, apps.c.client_id == sl.c.client_id))
             .where(sl.c.time >= since, sl.c.result == "success").group_by(rung))
        if tenant_id is not None:
            q = q.where(sl.c.tenant_id == tenant_id)
        async with self.engine.connect() as conn:
            return {r.rung: int(r.n) for r in await conn.execute(q) if r.rung}

    async def credential_counts(self, now: float) -> dict[tuple[str, str], int]:
        """Every credential of the installation by (kind, state): three grouped counts, for the metrics."""
        secret_state = case((cs.c.revoked_at.is_not(None), "revoked"), (cs.c.expires_at <= now, "expired"),
                            else_="active").label("state")
        cert_state = case((certs.c.revoked_at.is_not(None), "revoked"), (certs.c.not_after <= now, "expired"),
                          (certs.c.not_before > now, "not_yet_valid"), else_="active").label("state")
        found: dict[tuple[str, str], int] = {}
        async with self.engine.connect() as conn:
            for kind, q in (("secret", select(secret_state, func.count().label("n")).group_by(secret_state)),
                            ("certificate", select(cert_state, func.count().label("n")).group_by(cert_state))):
                for r in await conn.execute(q):
                    found[(kind, r.state)] = int(r.n)
            federated = await conn.execute(select(func.count()).select_from(fc))
            found[("federated", "active")] = int(federated.scalar_one())
        return found


# `keyless federation lint` findings that make a subject pattern broader than one repository or namespace.
BROAD_FINDINGS = frozenset({"pattern_spans_repositories", "pattern_spans_namespaces", "pattern_unknown_shape"})


def _broad(row: Any) -> bool:
    """The federation linter's verdict on one credential (`keyless.oauth.federation.rules.lint`)."""
    return row.subject_is_pattern and any(f.code in BROAD_FINDINGS for f in lint([federated_credential(row)]))
