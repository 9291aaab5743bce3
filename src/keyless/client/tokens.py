"""`AccessToken` / `AccessTokenInfo`: azure-core's own classes when azure-core is installed (so Azure SDK
clients get exactly what they expect), look-alikes with the same fields otherwise.

For type checkers the names are azure-core's classes, so a Keyless credential passes where azure-core's
`TokenCredential` / `SupportsTokenInfo` is expected; at run time `keyless.client.AccessToken` is the
look-alike, and azure-core is imported only when a token is first handed out.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, cast


class KeylessAccessToken(NamedTuple):
    """`azure.core.credentials.AccessToken`'s shape: the token and its expiry in Unix time."""

    token: str
    expires_on: int

    def __repr__(self) -> str:
        return f"AccessToken(token='***', expires_on={self.expires_on})"


class KeylessAccessTokenInfo:
    """`azure.core.credentials.AccessTokenInfo`'s shape, with the time the token should be refreshed."""

    def __init__(self, token: str, expires_on: int, *, token_type: str = "Bearer",  # noqa: S107
                 refresh_on: int | None = None) -> None:
        self.token = token
        self.expires_on = expires_on
        self.token_type = token_type
        self.refresh_on = refresh_on

    def __repr__(self) -> str:
        return f"AccessTokenInfo(token='***', expires_on={self.expires_on}, refresh_on={self.refresh_on})"


class KeylessTokenRequestOptions(TypedDict, total=False):
    """`azure.core.credentials.TokenRequestOptions`'s shape."""

    claims: str
    tenant_id: str
    enable_cae: bool


if TYPE_CHECKING:
    from azure.core.credentials import AccessToken as AccessToken
    from azure.core.credentials import AccessTokenInfo as AccessTokenInfo
    from azure.core.credentials import TokenRequestOptions as TokenRequestOptions
else:
    TokenRequestOptions = KeylessTokenRequestOptions
    AccessToken = KeylessAccessToken
    AccessTokenInfo = KeylessAccessTokenInfo


@functools.cache
def _azure_classes() -> tuple[Any, Any] | None:
    try:
        from azure.core import credentials
    except ImportError:
        return None
    return credentials.AccessToken, getattr(credentials, "AccessTokenInfo", None)


def make_access_token(token: str, expires_on: int) -> AccessToken:
    azure = _azure_classes()
    if azure is None:
        return cast(AccessToken, KeylessAccessToken(token, expires_on))
    return cast(AccessToken, azure[0](token, expires_on))


def make_access_token_info(token: str, expires_on: int, refresh_on: int | None) -> AccessTokenInfo:
    azure = _azure_classes()
    if azure is None or azure[1] is None:
        return cast(AccessTokenInfo, KeylessAccessTokenInfo(token, expires_on, refresh_on=refresh_on))
    return cast(AccessTokenInfo, azure[1](token, expires_on, token_type="Bearer",  # noqa: S106
                                           refresh_on=refresh_on))
