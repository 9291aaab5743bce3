"""What the reaping rule of a candidate policy would do now (docs/policies.md, "Reaping"): the part
of the policy dry run (`POST /policy/test`, `keyless policy test`, the console) that lists the
credentials the scheduled scan would disable and delete, or under `audit` only report. It reads the
tenant's inventory in bulk, as the scan does, and writes nothing."""

from __future__ import annotations

from keyless.directory.notices import DAY
from keyless.directory.policies import PolicyFinding
from keyless.directory.reaping import findings, installation_rule, plan, rule_for, shortest_deletion
from keyless.domain.model import Tenant
from keyless.server.context import ServerContext


async def reaping_dry_run(ctx: ServerContext, tenant: Tenant, document: object, *,
                          client_id: str | None) -> list[PolicyFinding]:
    """The disablings and deletions if `document` were the policy at `client_id` (None: the tenant),
    the other stored policies (and the installation's deprecated default) as they are."""
    policies = ctx.admin.policies
    candidate = policies.parse(document)
    target = None if client_id is None else (await ctx.admin.application(tenant, client_id)).client_id
    stored = {**await policies.all_stored(tenant), target: candidate}
    default = installation_rule(ctx.settings.reap_unused_days, ctx.settings.reap_delete_after_days)
    now = ctx.clock.now()
    oldest = shortest_deletion(stored, default)
    revoked = await ctx.store.revoked_before(tenant.id, now - oldest * DAY) if oldest is not None else []
    return findings(plan(await ctx.store.credentials(tenant.id), revoked, now, rule_for(stored, default)), now)
