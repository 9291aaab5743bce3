"""The credential-policy dry run ("what would this policy refuse?"), shared by the management API
(`POST /policy/test`, `keyless policy test`) and the web console: every live credential of the
tenant and its recent successful sign-ins, checked against a candidate policy put at the tenant
default or one application's override, the other stored policies as they are (docs/policies.md).
Writes nothing; the caller needs Keyless.Admin, since it lists every credential's weaknesses."""

from __future__ import annotations

import contextlib

from keyless.crypto.ca import IssuedByCa
from keyless.directory.policies import OwnedCredential, PolicyFinding
from keyless.domain.model import Tenant
from keyless.domain.policies import facts_of
from keyless.domain.ports import LogQuery
from keyless.server.context import ServerContext
from keyless.store.policy_inventory import live_credentials


async def inventory(ctx: ServerContext, tenant: Tenant) -> list[OwnedCredential]:
    """Every live credential of the tenant with what the rules may ask of it: the applications' and
    hosts' secrets and certificates in three queries whatever the tenant's size
    (`keyless.store.policy_inventory`), and the federated credentials."""
    check = IssuedByCa(ctx.ca().cert_pem) if ctx.admin.policies.internal_ca is not None else None
    of_apps, of_hosts = await live_credentials(ctx.engine, tenant.id, ctx.clock.now(), check)
    if ctx.federation is not None:
        of_apps += [OwnedCredential(f.owner_id, facts_of(f)) for f in await ctx.federation.list_all(tenant)]
    return of_apps + (of_hosts if ctx.hosts is not None else [])


async def policy_dry_run(ctx: ServerContext, tenant: Tenant, document: object, *, client_id: str | None,
                         days: int, max_signins: int) -> tuple[list[PolicyFinding], list[PolicyFinding]]:
    """Findings among credentials and among the last `days` of successful sign-ins (at most
    `max_signins`, newest first) if `document` were the policy at `client_id` (None: the tenant)."""
    policies = ctx.admin.policies
    candidate = policies.parse(document)
    target = None
    if client_id is not None:
        target = (await ctx.admin.application(tenant, client_id)).client_id
    with contextlib.suppress(Exception):  # a store hiccup must not hide what is already written
        await ctx.signins.flush()
    signins = await ctx.admin.signins(LogQuery(tenant_id=tenant.id, result="success",
                                               since=ctx.clock.now() - days * 86400, limit=max_signins))
    stored = await policies.all_stored(tenant)
    return policies.test(candidate, target, stored, await inventory(ctx, tenant), signins, tenant)
