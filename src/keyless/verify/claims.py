"""Claim checks for a signature-verified access token (RFC 9068 §4, RFC 7519; catalog J12, J13).

Exact `iss`; `aud` equal to ours or containing it as an element (never a substring match); `exp`
required and in the future, `nbf`/`iat` not in the future, each with a bounded leeway. Every claim
we read has its type checked first (`keyless.jose.claims`): a NumericDate is a finite number in
0 <= t < 2**53 (a NaN `exp` would never expire), `scp` a string, `roles` an array of strings, `aud` a
string or array of strings, `iss`/`sub`/`tid`/`client_id` strings. A wrong type makes the token
invalid; it is never read as "no roles" or "no scopes" (docs/security.md, "Hostile numbers and
encodings").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyless.errors import KeylessError
from keyless.jose.claims import check_access_token_types
from keyless.jose.errors import InvalidClaim

MAX_LEEWAY = 60
REQUIRED = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
_REQUIRED = frozenset(REQUIRED)


class InvalidToken(KeylessError):
    """The token must be refused; `reason` is for logs and tests, not for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AccessToken:
    claims: dict[str, Any] = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def roles(self) -> frozenset[str]:
        """App roles; `check_access_token` refused any `roles` that is not an array of strings (the
        filter only guards an `AccessToken` built by hand)."""
        roles = self.claims.get("roles", [])
        return frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()

    @property
    def scopes(self) -> frozenset[str]:
        """Delegated scopes from `scp` (space-separated, RFC 8693 §4.2 / Entra v2; a string, checked)."""
        scp = self.claims.get("scp")
        return frozenset(scp.split()) if isinstance(scp, str) else frozenset()

    @property
    def is_app_only(self) -> bool:
        """True for a client-credentials (application) token, `idtyp: app` (catalog J16): `sub` is the
        client's service principal, not a user or a workload acting for one."""
        return self.claims.get("idtyp") == "app"

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])


def check_access_token(
    claims: dict[str, Any], *, issuer: str, audience: str, now: float, leeway: float = 30
) -> AccessToken:
    if not 0 <= leeway <= MAX_LEEWAY:
        raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
    if not claims.keys() >= _REQUIRED:  # one set comparison; the first missing one (in order) for the reason
        raise InvalidToken("missing claim " + next(c for c in REQUIRED if c not in claims))
    try:
        check_access_token_types(claims)
    except InvalidClaim as exc:
        raise InvalidToken(str(exc)) from None
    if claims["iss"] != issuer:
        raise InvalidToken("wrong issuer")
    aud = claims["aud"]
    if audience not in ([aud] if isinstance(aud, str) else aud):  # an element, never a substring
        raise InvalidToken("wrong audience")
    # check_access_token_types has checked every NumericDate's type and range: compare directly.
    if now >= claims["exp"] + leeway:
        raise InvalidToken("expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and value > now + leeway:
            raise InvalidToken(f"{name} in the future")
    return AccessToken(claims=claims)
