"""Client-authentication methods by wire string, and the one dispatch over them (RFC 6749 §2.3).

Adding a method (mTLS, RFC 8705 §2; or any other) is one module with a class like those below,
plus its entry in `DEFAULT_METHODS`; the token service takes the registry as an argument, so a test
or a deployment can run with fewer. Order matters only for the sign-in log when a request presents
several methods: the first one presented is recorded as the one attempted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from keyless.oauth.client_auth.federated import FederatedAssertion
from keyless.oauth.client_auth.private_key_jwt import PrivateKeyJwt
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.client_auth.secret import SecretBasic, SecretPost
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.errors import InvalidClient, InvalidRequest


class ClientAuthMethod(Protocol):
    @property
    def name(self) -> str:
        """The method's wire string (RFC 8414 §2, `token_endpoint_auth_methods_supported`)."""
        ...

    def presented(self, ctx: TokenContext, env: TokenEnv) -> bool:
        """Whether the request carries this method's credential (looked at, never verified)."""
        ...

    async def authenticate(self, ctx: TokenContext, env: TokenEnv) -> AuthenticatedClient:
        """Verify the credential; raises `InvalidClient` (or `InvalidRequest` for a malformed one)."""
        ...


def _methods(*methods: ClientAuthMethod) -> Mapping[str, ClientAuthMethod]:
    return {m.name: m for m in methods}


DEFAULT_METHODS = _methods(SecretBasic(), SecretPost(), PrivateKeyJwt(), FederatedAssertion())


async def authenticate(
    ctx: TokenContext, env: TokenEnv, methods: Mapping[str, ClientAuthMethod]
) -> AuthenticatedClient:
    """Exactly one presented method authenticates the client; `ctx.method` names the attempt."""
    presented = [m for m in methods.values() if m.presented(ctx, env)]
    if presented:
        ctx.method = presented[0].name
    if len(presented) > 1:
        raise InvalidRequest("only one client authentication method may be used", detail="multiple_auth_methods")
    if not presented:
        raise InvalidClient(detail="no_client_authentication")
    return await presented[0].authenticate(ctx, env)
