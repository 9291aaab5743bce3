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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyless.domain.credentials import Credential, Owner
from keyless.domain.posture import (
    CredentialFacts,
    CredentialFlags,
    LeakNote,
    PostureFacts,
    SignInUsage,
    Workload,
    WorkloadKind,
)
from keyless.oauth.federation.rules import lint
from keyless.store import tables as t
from keyless.store.base import SqlRepository
from keyless.store.federation import federated_credential
from keyless.store.leak_tables import leaks as lk

apps, mi, cs, certs, fc, sl, hosts = (t.applications, t.managed_identities, t.client_secrets, t.certificates,
                                      t.federated_credentials, t.signin_log, t.hosts)


def _in_range(col: Any, first: str, last: str) -> Any:
    return and_(col >= first, col <= last)


async def _usage(conn: AsyncConnection, tenant_id: str, since: float) -> SignInUsage:
    """The tenant's successful sign-ins since `since`, grouped by (client, credential, source): one scan
    of the window (index `ix_signin_log_tenant_time`), shared by every page of a report."""
    q = (select(sl.c.client_id, sl.c.credential_id, sl.c.source, func.count().label("n"),
                func.max(sl.c.time).label("last"))
         .where(sl.c.tenant_id == tenant_id, sl.c.time >= since, sl.c.result == "success",
                sl.c.client_id.is_not(None))
         .group_by(sl.c.client_id, sl.c.credential_id, sl.c.source))
    usage = SignInUsage()
    for r in await conn.execute(q):
        usage.add(r.client_id, r.credential_id, r.source, int(r.n), float(r.last))
    return usage


async def host_map(conn: AsyncConnection, tenant_id: str, since: float) -> dict[str, str]:
    """Source address → name of the host whose agent signed in from it in the window: as the host's
    own identity, or with the host's certificate for an identity assigned to it. An address used by
    several hosts (NAT) is left out: it proves nothing about where a workload runs. Two joins without
    an OR, so each can use an index."""
    window = and_(sl.c.tenant_id == tenant_id, sl.c.time >= since, sl.c.result == "success", sl.c.source.is_not(None))
    as_system = (select(hosts.c.name, sl.c.source).distinct()
                 .select_from(sl.join(hosts, hosts.c.system_client_id == sl.c.client_id)).where(window))
    with_cert = (select(hosts.c.name, sl.c.source).distinct()
                 .select_from(sl.join(certs, and_(certs.c.id == sl.c.credential_id, certs.c.owner_kind == "host"))
                              .join(hosts, hosts.c.id == certs.c.owner_id)).where(window))
    found: dict[str, set[str]] = defaultdict(set)
    for q in (as_system, with_cert):
        for r in await conn.execute(q):
            found[r.source].add(r.name)
    return {source: next(iter(names)) for source, names in found.items() if len(names) == 1}


async def _leaks(conn: AsyncConnection, tenant_id: str, first: str, last: str) -> dict[str, list[LeakNote]]:
    """Leak reports about the page's secrets, newest first (one per secret)."""
    q = (select(lk.c.client_id, lk.c.secret_id, lk.c.hint, lk.c.location, lk.c.reported_at)
         .where(lk.c.tenant_id == tenant_id, _in_range(lk.c.client_id, first, last))
         .order_by(lk.c.reported_at.desc()))
    found: dict[str, list[LeakNote]] = defaultdict(list)
    seen: set[str] = set()
    for r in await conn.execute(q):
        if r.secret_id not in seen:
            seen.add(r.secret_id)
            found[r.client_id].append(LeakNote(r.secret_id, r.hint, r.location, r.reported_at))
    return found


class SqlPostureStore(SqlRepository):
    async def posture_facts(self, tenant_id: str, *, usage: SignInUsage, after: str | None, limit: int,
                            client_id: str | None = None,
                            internal_ca: Callable[[bytes], bool] | None = None) -> PostureFacts:
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
            page = list(await conn.execute(page_q))
            more = len(page) > limit
            page = page[:limit]
            if not page:
                return PostureFacts((), None)
            first, last = page[0].client_id, page[-1].client_id
            leaks = await _leaks(conn, tenant_id, first, last)
            creds = await self._credentials(conn, tenant_id, first, last, internal_ca, leaks)
            assigned = await self._assigned_hosts(conn, first, last)
        workloads = []
        for r in page:
            kind: WorkloadKind = "identity" if r.managed_resource_id is not None else "application"
            mine = tuple(CredentialFacts(c.credential, usage.of_credential(c.credential.id), c.from_internal_ca,
                                         c.broad_subject, c.leaked) for c in creds.get(r.client_id, ()))
            n, sources, last_at = usage.of_client(r.client_id)
            identity_hosts = tuple(dict.fromkeys(([r.host] if r.host else []) + assigned.get(r.client_id, [])))
            workloads.append(Workload(
                client_id=r.client_id, display_name=r.display_name, kind=kind, created_at=r.created_at,
                credentials=mine, identity_kind=r.identity_kind, hosts=identity_hosts, signins=n, sources=sources,
                last_signin_at=last_at, resource=r.identifier_uri is not None, leaks=tuple(leaks.get(r.client_id, ())),
            ))
        return PostureFacts(tuple(workloads), page[-1].client_id if more else None)

    async def host_map(self, tenant_id: str, since: float) -> Mapping[str, str]:
        async with self.engine.connect() as conn:
            return await host_map(conn, tenant_id, since)

    async def signin_usage(self, tenant_id: str, since: float) -> SignInUsage:
        async with self.engine.connect() as conn:
            return await _usage(conn, tenant_id, since)

    @staticmethod
    async def _assigned_hosts(conn: AsyncConnection, first: str, last: str) -> dict[str, list[str]]:
        ia = t.identity_assignments
        q = (select(ia.c.identity_client_id, hosts.c.name).join(hosts, hosts.c.id == ia.c.host_id)
             .where(_in_range(ia.c.identity_client_id, first, last)).order_by(hosts.c.name))
        found: dict[str, list[str]] = defaultdict(list)
        for r in await conn.execute(q):
            found[r.identity_client_id].append(r.name)
        return found

    @staticmethod
    async def _credentials(conn: AsyncConnection, tenant_id: str, first: str, last: str,
                           internal_ca: Callable[[bytes], bool] | None,
                           leaks: Mapping[str, list[LeakNote]]) -> dict[str, list[CredentialFacts]]:
        """The unrevoked secrets (marked when a leak was reported and not revoked, `keyless scan`),
        application certificates and federated credentials of the page's workloads, by client id.
        Rows of another tenant's clients in the range are dropped by the caller's lookup (the page's
        client ids are this tenant's)."""
        found: dict[str, list[CredentialFacts]] = defaultdict(list)
        leaked = {n.secret_id for notes in leaks.values() for n in notes}
        q_secrets = (select(cs.c.id, cs.c.client_id, cs.c.hint, cs.c.display_name, cs.c.created_at,
                            cs.c.expires_at, cs.c.last_used_at)
                     .where(_in_range(cs.c.client_id, first, last), cs.c.revoked_at.is_(None)))
        for r in await conn.execute(q_secrets):
            found[r.client_id].append(CredentialFacts(Credential(
                id=r.id, kind="secret", owner=Owner("application", r.client_id), display_name=r.display_name,
                created_at=r.created_at, expires_at=r.expires_at, last_used_at=r.last_used_at, label=r.hint),
                leaked=r.id in leaked))
        q_certs = (select(certs.c.id, certs.c.owner_id, certs.c.der, certs.c.x5t_s256, certs.c.display_name,
                          certs.c.created_at, certs.c.not_before, certs.c.not_after, certs.c.last_used_at)
                   .where(certs.c.owner_kind == "application", _in_range(certs.c.owner_id, first, last),
                          certs.c.revoked_at.is_(None)))
        for c in await conn.execute(q_certs):
            internal = internal_ca(bytes(c.der)) if internal_ca is not None else None
            found[c.owner_id].append(CredentialFacts(Credential(
                id=c.id, kind="certificate", owner=Owner("application", c.owner_id), display_name=c.display_name,
                created_at=c.created_at, expires_at=c.not_after, not_before=c.not_before,
                last_used_at=c.last_used_at, label=c.x5t_s256), from_internal_ca=internal))
        q_fed = select(fc).where(fc.c.tenant_id == tenant_id, _in_range(fc.c.owner_id, first, last))
        for f in await conn.execute(q_fed):
            found[f.owner_id].append(CredentialFacts(Credential(
                id=f.id, kind="federated", owner=Owner(f.owner_type, f.owner_id), display_name=f.name,
                created_at=f.created_at, last_used_at=f.last_used_at, label=f"{f.issuer} {f.subject}"),
                broad_subject=_broad(f)))
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
