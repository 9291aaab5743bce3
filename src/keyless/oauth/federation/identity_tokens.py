"""Outbound identity tokens: Keyless as an issuer others federate with (issue 5 scope 4).

An application asks the token endpoint, with its usual client credentials grant, for
`scope={audience}/.default` where the audience is on its allowlist (deny by default) and is not a
resource of the tenant. It gets an OIDC-style identity token signed with the tenant's key: `iss` the
tenant issuer, `sub` its object id, `aud` that audience, ten minutes of life. The tenant's discovery
document and JWKS are public, so a cloud or another Keyless tenant can trust it through a federated
credential (issuer = this tenant's issuer, subject = the object id).

`typ` is `JWT`, not `at+jwt`: resource servers that validate Keyless access tokens (`keyless.verify`)
refuse it, so an identity token cannot be replayed as an access token (RFC 8725 §3.11). This is the
shape Entra gives a managed identity for `api://AzureADTokenExchange`, which is why unmodified
azure-identity credentials can ask for it and hand it on as a client assertion. A managed identity
(through its host's agent) gets the same token, with its resource id as `xms_mirid`; its allowlist
is kept under owner kind "identity".
"""

from __future__ import annotations

from typing import Any

from keyless.domain.federation import owner_type_of
from keyless.domain.model import Application, Tenant
from keyless.jose.jws import sign
from keyless.oauth import tokens
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.keyring import ActiveKey

IDENTITY_TOKEN_TYP = "JWT"  # noqa: S105 - a media type, not a secret
IDENTITY_TOKEN_LIFETIME = 600
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN, not a secret


def identity_token_claims(
    *, issuer: str, tenant: Tenant, client: Application, audience: str, now: int, token_id: str,
    lifetime: int = IDENTITY_TOKEN_LIFETIME,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client.object_id,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": token_id,
        "tid": tenant.id,
        "oid": client.object_id,
        "azp": client.client_id,
        "idtyp": "app",
        "ver": "2.0",
    }
    if client.managed_resource_id is not None:
        claims["xms_mirid"] = client.managed_resource_id  # as in the identity's access tokens
    return claims


def mint_identity_token(key: ActiveKey, claims: dict[str, Any]) -> str:
    return sign(claims, key.private, alg=key.alg, kid=key.kid, typ=IDENTITY_TOKEN_TYP)


async def allowed(ctx: TokenContext, env: TokenEnv, audience: str) -> bool:
    """Whether the authenticated client may have an identity token for `audience` (deny by default:
    federation configured and the audience on the client's allowlist)."""
    if env.federation is None or ctx.client is None:
        return False
    app = ctx.client.app
    audiences = await env.federation.credentials.identity_token_audiences(ctx.tenant.id, owner_type_of(app),
                                                                         app.client_id)
    return audience in audiences


async def issue(ctx: TokenContext, env: TokenEnv, audience: str) -> None:
    """Mint the identity token into `ctx.response` (RFC 8693 §2.2.1's `issued_token_type` names it)."""
    if ctx.client is None:  # only reached after client authentication
        return
    key = await env.keyring.signer(ctx.tenant.id)
    ctx.resource = audience
    ctx.token_id = tokens.new_token_id()
    claims = identity_token_claims(
        issuer=env.issuer, tenant=ctx.tenant, client=ctx.client.app, audience=audience,
        now=int(env.clock.now()), token_id=ctx.token_id,
    )
    ctx.response = {
        "token_type": "Bearer",
        "expires_in": IDENTITY_TOKEN_LIFETIME,
        "access_token": mint_identity_token(key, claims),
        "issued_token_type": ISSUED_TOKEN_TYPE,
    }
