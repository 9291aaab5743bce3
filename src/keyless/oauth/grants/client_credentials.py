"""The client_credentials grant (RFC 6749 §4.4): which audience and roles an authenticated client gets.

A token is for one resource (R-9700-2). The client needs a role assignment on that resource, unless
the resource is open to every application of the tenant; then it gets a token with no roles.
No refresh token is ever issued for this grant (R-6749-5).
"""

from __future__ import annotations

from dataclasses import dataclass

from keyless.domain.model import Application
from keyless.domain.ports import DirectoryReader
from keyless.oauth.client_auth import AuthenticatedClient
from keyless.oauth.errors import InvalidScope, InvalidTarget, OAuthError
from keyless.oauth.scope import requested_resource

GRANT_TYPE = "client_credentials"


@dataclass(frozen=True)
class Authorization:
    resource: Application
    audience: str  # exactly what the client asked for: an identifier URI or the resource's client_id
    roles: tuple[str, ...]


async def authorize(
    client: AuthenticatedClient, tenant_id: str, scope: str | None, resource: str | None, directory: DirectoryReader
) -> Authorization:
    target = requested_resource(scope, resource)
    error: type[OAuthError] = InvalidTarget if target.via_resource_param else InvalidScope
    app = await directory.find_resource(tenant_id, target.identifier)
    if app is None or not app.enabled:
        raise error("the requested resource is not registered in this tenant", detail="resource_unknown")
    roles = await directory.assigned_roles(tenant_id, client.app.object_id, app.client_id)
    if roles is None:
        if not app.open_to_tenant:
            raise error("the client has no access to the requested resource", detail="no_assignment")
        roles = ()
    return Authorization(resource=app, audience=target.identifier, roles=roles)
