"""The client_credentials grant (RFC 6749 §4.4): which audience and roles an authenticated client gets.

A token is for one resource (R-9700-2). The client needs a role assignment on that resource, unless
the resource is open to every application of the tenant; then it gets a token with no roles.
No refresh token is ever issued for this grant (R-6749-5).

A requested audience that is no resource of the tenant but is on the client's identity-token
allowlist takes the outbound identity-token path (`keyless.oauth.federation.identity_tokens`); it
is looked up only then, so access-token requests pay nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from keyless.domain.model import Application
from keyless.domain.ports import DirectoryReader
from keyless.oauth import tokens
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.errors import InvalidScope, InvalidTarget, OAuthErrorResponse
from keyless.oauth.federation import identity_tokens
from keyless.oauth.scope import RequestedResource, requested_resource

GRANT_TYPE = "client_credentials"


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class Authorization:
    resource: Application
    audience: str  # exactly what the client asked for: an identifier URI or the resource's client_id
    roles: tuple[str, ...]


async def authorize(
    client: AuthenticatedClient, tenant_id: str, target: RequestedResource, directory: DirectoryReader,
    resource: Application | None,
) -> Authorization:
    """The client's roles on `resource` (found for `target`, enabled), or the refusal."""
    error: type[OAuthErrorResponse] = InvalidTarget if target.via_resource_param else InvalidScope
    if resource is None or not resource.enabled:
        raise error("the requested resource is not registered in this tenant", detail="resource_unknown")
    roles = await directory.assigned_roles(tenant_id, client.app.object_id, resource.client_id)
    if roles is None:
        if not resource.open_to_tenant:
            raise error("the client has no access to the requested resource", detail="no_assignment")
        roles = ()
    return Authorization(resource=resource, audience=target.identifier, roles=roles)


class ClientCredentials:
    grant_type = GRANT_TYPE

    async def issue(self, ctx: TokenContext, env: TokenEnv) -> None:
        client = ctx.client
        if client is None:  # the service authenticates before any grant; never reached
            raise InvalidScope("no authenticated client", detail="no_client")
        target = requested_resource(ctx.param("scope"), ctx.param("resource"))
        found = await env.directory.find_resource(ctx.tenant.id, target.identifier)
        if (found is None or not found.enabled) and await identity_tokens.allowed(ctx, env, target.identifier):
            await identity_tokens.issue(ctx, env, target.identifier)
            return
        grant = await authorize(client, ctx.tenant.id, target, env.directory, found)
        ctx.resource = grant.resource.identifier_uri or grant.resource.client_id
        key = await env.keyring.signer(ctx.tenant.id)
        ctx.token_id = tokens.new_token_id()
        lifetime = ctx.tenant.token_lifetime
        extra = tokens.managed_identity_claims(client.app)
        acting = tokens.credential_claims(grant.resource, client.credential_id, client.credential_type)
        if acting:
            extra = {**(extra or {}), **acting}
        claims = tokens.access_token_claims(
            issuer=env.issuer, tenant=ctx.tenant, client=client.app, audience=grant.audience, roles=grant.roles,
            azpacr=client.azpacr, now=int(env.clock.now()), lifetime=lifetime, token_id=ctx.token_id, extra=extra,
        )
        token = await env.defer(partial(tokens.mint, key, claims))
        ctx.response = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }
