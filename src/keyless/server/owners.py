"""Names of credential owners (applications, managed identities, hosts) for one tenant: what the
inventory and the notification payloads show beside an owner's id."""

from __future__ import annotations

from keyless.domain.model import Tenant
from keyless.server.context import ServerContext


async def owner_names(ctx: ServerContext, tenant: Tenant) -> dict[str, str]:
    """Owner id → name: an application's display name (a managed identity is one), a host's name."""
    names = {a.client_id: a.display_name for a in await ctx.store.list_applications(tenant.id)}
    if ctx.hosts is not None:
        names |= {h.id: h.name for h in await ctx.hosts.list_hosts(tenant)}
    return names
