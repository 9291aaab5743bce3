"""The credential-policy dry run's inventory in bulk (`keyless policy test`, docs/policies.md): every
live secret and certificate of a tenant's applications and hosts with what the rules ask of it, in
three queries whatever the tenant's size. It read them application by application before (two
queries an application: minutes for 20,000, docs/benchmarks.md "Posture").

Same credentials and order as that walk: applications by (created, client id), each one's live
secrets then its unrevoked, unexpired certificates (each oldest first); then the hosts' unexpired
certificates. A certificate's "issued by the installation's CA" is the verdict kept with it
(migration 0017, `keyless.store.posture.ca_verdicts`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyless.directory.policies import OwnedCredential
from keyless.domain.policies import CredentialFacts
from keyless.domain.posture import IssuerCheck
from keyless.store import tables as t
from keyless.store.posture import ca_verdicts

apps, cs, certs, hosts = t.applications, t.client_secrets, t.certificates, t.hosts


async def live_credentials(engine: AsyncEngine, tenant_id: str, now: float, internal_ca: IssuerCheck | None,
                           ) -> tuple[list[OwnedCredential], list[OwnedCredential]]:
    """(the applications' credentials, the hosts' certificates)."""
    q_secrets = (select(cs.c.id, cs.c.client_id, cs.c.created_at, cs.c.expires_at, apps.c.created_at.label("app_at"))
                 .join(apps, apps.c.client_id == cs.c.client_id)
                 .where(apps.c.tenant_id == tenant_id, cs.c.revoked_at.is_(None), cs.c.expires_at > now)
                 .order_by(cs.c.created_at))
    columns = (certs.c.id, certs.c.owner_id, certs.c.not_before, certs.c.not_after, certs.c.key_type,
               certs.c.key_size, certs.c.ca_issued, certs.c.ca_checked)
    q_app_certs = (select(*columns, apps.c.created_at.label("app_at"))
                   .join(apps, apps.c.client_id == certs.c.owner_id)
                   .where(certs.c.owner_kind == "application", apps.c.tenant_id == tenant_id,
                          certs.c.revoked_at.is_(None), certs.c.not_after > now)
                   .order_by(certs.c.created_at))
    q_host_certs = (select(*columns, hosts.c.created_at.label("host_at"))
                    .join(hosts, hosts.c.id == certs.c.owner_id)
                    .where(certs.c.owner_kind == "host", hosts.c.tenant_id == tenant_id, certs.c.not_after > now)
                    .order_by(hosts.c.created_at, hosts.c.id, certs.c.created_at))
    async with engine.connect() as conn:
        secret_rows = (await conn.execute(q_secrets)).all()
        app_cert_rows = (await conn.execute(q_app_certs)).all()
        host_cert_rows = (await conn.execute(q_host_certs)).all()
        verdicts = await ca_verdicts(conn, [*app_cert_rows, *host_cert_rows], internal_ca)
        await conn.commit()  # the verdicts of certificates checked for the first time

    def cert(r: Any) -> CredentialFacts:
        return CredentialFacts("certificate", r.id, lifetime=r.not_after - r.not_before, key_type=r.key_type,
                               key_size=r.key_size, from_internal_ca=verdicts.get(r.id))

    by_app: dict[tuple[float, str], list[OwnedCredential]] = defaultdict(list)
    for s in secret_rows:
        by_app[(s.app_at, s.client_id)].append(
            OwnedCredential(s.client_id, CredentialFacts("secret", s.id, lifetime=s.expires_at - s.created_at)))
    for c in app_cert_rows:
        by_app[(c.app_at, c.owner_id)].append(OwnedCredential(c.owner_id, cert(c)))
    return ([c for key in sorted(by_app) for c in by_app[key]],
            [OwnedCredential(r.owner_id, cert(r)) for r in host_cert_rows])
