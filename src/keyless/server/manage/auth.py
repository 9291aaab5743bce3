"""Who is calling the management API: a bearer access token issued by this tenant for the management
resource, carrying one of the roles the operation declares (`access.py`). Validated in-process
against the tenant's published keys with the same checks a resource server makes (`keyless.verify`)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from keyless.directory.bootstrap import MANAGEMENT_URI
from keyless.domain.model import Actor, Tenant
from keyless.errors import KeylessError
from keyless.oauth.tokens import CREDENTIAL_ID_CLAIM, CREDENTIAL_TYPE_CLAIM
from keyless.server.bearer import BearerInvalid, BearerMissing
from keyless.server.context import ServerContext


class AuthProblem(KeylessError):
    def __init__(self, status: int, code: str, detail: str, challenge: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.challenge = challenge


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    client_id: str
    roles: frozenset[str]
    object_id: str = ""
    credential_id: str | None = None  # from the token's private claims (keyless.oauth.tokens)
    credential_type: str | None = None

    @property
    def actor(self) -> Actor:
        """The caller as the use cases audit it: its client id and the credential it signed in with."""
        return Actor(self.client_id, self.credential_id, self.credential_type)


def _challenge(error: str | None = None) -> str:
    value = 'Bearer realm="keyless"'
    return value + f', error="{error}"' if error else value


async def authenticate(ctx: ServerContext, request: Request, tenant_ref: str, *, roles: frozenset[str]) -> Caller:
    """`roles`: any one of them admits the caller (RFC 6750 §3.1: 401 for a bad token, 403 for too few roles)."""
    tenant = await ctx.directory.get_tenant(tenant_ref)
    if tenant is None:
        # Same answer as a missing token: the API does not confirm which tenants exist.
        raise AuthProblem(401, "unauthenticated", "a bearer token is required", _challenge())
    try:
        access = await ctx.bearers.verify(tenant, request.headers.get("authorization"), MANAGEMENT_URI)
    except BearerMissing:
        raise AuthProblem(401, "unauthenticated", "a bearer token is required", _challenge()) from None
    except BearerInvalid:
        raise AuthProblem(401, "invalid_token", "the bearer token is invalid", _challenge("invalid_token")) from None
    if not access.roles & roles:
        raise AuthProblem(403, "forbidden", "the caller lacks the role this operation needs",
                          _challenge("insufficient_scope"))
    credential_id, credential_type = access.claims.get(CREDENTIAL_ID_CLAIM), access.claims.get(CREDENTIAL_TYPE_CLAIM)
    return Caller(tenant=tenant, client_id=access.client_id, roles=access.roles, object_id=access.subject,
                  credential_id=credential_id if isinstance(credential_id, str) else None,
                  credential_type=credential_type if isinstance(credential_type, str) else None)
