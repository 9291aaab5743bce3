"""The credential-policy dry run ("what would this policy refuse?"), shared by the management API
(`POST /policy/test`, `keyless policy test`) and the web console: every live credential of the
tenant and its recent successful sign-ins, checked against a candidate policy put at the tenant
default or one application's override, the other stored policies as they are (docs/policies.md).
Writes nothing; the caller needs Keyless.Admin, since it lists every credential's weaknesses."""

from __future__ import annotations

import contextlib

from keyless.directory.policies import Finding, OwnedCredential
from keyless.domain.model import Tenant
from keyless.domain.policies import facts_of
from keyless.domain.ports import LogQuery
from keyless.server.context import ServerContext


async def inventory(ctx: ServerContext, tenant: Tenant) -> list[OwnedCredential]:
    """Every live credential of the tenant with what the rules may ask of it."""
    now = ctx.clock.now()
    ca = ctx.admin.policies.internal_ca
    out: list[OwnedCredential] = []
    for app in await ctx.admin.list_applications(tenant):
        out += [OwnedCredential(app.client_id, facts_of(s)) for s in await ctx.admin.list_secrets(tenant, app.client_id)
                if s.usable_at(now)]
        out += [OwnedCredential(app.client_id, facts_of(c, ca))
                for c in await ctx.admin.list_certificates(tenant, app.client_id) if now < c.not_after]
    if ctx.federation is not None:
        out += [OwnedCredential(f.owner_id, facts_of(f)) for f in await ctx.federation.list_all(tenant)]
    if ctx.hosts is not None:
        for host in await ctx.hosts.list_hosts(tenant):
            out += [OwnedCredential(host.id, facts_of(c, ca)) for c in await ctx.hosts.host_certificates(host)
                    if now < c.not_after]
    return out


async def policy_dry_run(ctx: ServerContext, tenant: Tenant, document: object, *, client_id: str | None,
                         days: int, max_signins: int) -> tuple[list[Finding], list[Finding]]:
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
