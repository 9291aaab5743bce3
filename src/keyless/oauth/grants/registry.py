"""Grant types by wire string (RFC 6749 §4, §5.2 `unsupported_grant_type`).

Adding a grant (token exchange, RFC 8693; or any other) is one module with a class like
`ClientCredentials`, plus its entry in `DEFAULT_GRANTS`; the token service takes the registry as an
argument. A grant runs after client authentication and fills the context's response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.grants.client_credentials import ClientCredentials


class Grant(Protocol):
    @property
    def grant_type(self) -> str:
        """The `grant_type` value that selects this grant."""
        ...

    async def issue(self, ctx: TokenContext, env: TokenEnv) -> None:
        """Authorize the authenticated client and fill `ctx.response`, `ctx.resource`, `ctx.token_id`;
        raises an `OAuthErrorResponse` to refuse."""
        ...


DEFAULT_GRANTS: Mapping[str, Grant] = {g.grant_type: g for g in (ClientCredentials(),)}
