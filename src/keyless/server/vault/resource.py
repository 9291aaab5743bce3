"""The vault's resource application: what `scope={vault_resource}/.default` names at the token
endpoint. One per tenant, open to every application of the tenant — a token for the vault proves
who the caller is and grants nothing by itself; the vault's own grants decide every call."""

from __future__ import annotations

import contextlib

from keyless.directory.errors import Conflict
from keyless.domain.model import Tenant
from keyless.server.context import ServerContext

DISPLAY_NAME = "Keyless Vault"


async def ensure_vault_resource(ctx: ServerContext, tenant: Tenant, *, actor: str) -> None:
    if await ctx.store.find_resource(tenant.id, ctx.vault_resource) is not None:
        return
    with contextlib.suppress(Conflict):  # another replica made it first
        await ctx.admin.create_application(tenant, DISPLAY_NAME, actor=actor, identifier_uri=ctx.vault_resource,
                                           open_to_tenant=True)


async def ensure_all(ctx: ServerContext) -> None:
    """At start-up: every tenant can be issued tokens for the configured vault resource (the resource
    follows `vault_domain` and `vault_port`, which may have changed since). Made here rather than by
    the first `POST /vaults`, so that call writes exactly one audit record, its own (issue 20)."""
    for tenant in await ctx.store.list_tenants():
        await ensure_vault_resource(ctx, tenant, actor="keyless-serve")
