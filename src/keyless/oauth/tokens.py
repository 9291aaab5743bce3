"""Minting JWT access tokens (RFC 9068) with Entra-compatible claims (DESIGN.md §3)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keyless.domain.model import MANAGEMENT_URI, Application, Tenant
from keyless.jose.hygiene import b64u_encode
from keyless.jose.jws import sign
from keyless.oauth.keyring import ActiveKey

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a secret
#: Private claims (RFC 7519 §4.3) of management API tokens: the id and kind of the credential the
#: caller signed in with, so each audit record names it (issue 20 item 3). An id, never key material.
CREDENTIAL_ID_CLAIM = "keyless_credential_id"
CREDENTIAL_TYPE_CLAIM = "keyless_credential_type"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    token_id: str


def access_token_claims(
    *,
    issuer: str,
    tenant: Tenant,
    client: Application,
    audience: str,
    roles: Sequence[str],
    azpacr: str,
    now: int,
    lifetime: int,
    token_id: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "sub": client.object_id,
        "oid": client.object_id,
        "tid": tenant.id,
        "client_id": client.client_id,
        "azp": client.client_id,
        "appid": client.client_id,
        "azpacr": azpacr,
        "idtyp": "app",
        "ver": "2.0",
        "jti": token_id,
    }
    if roles:
        claims["roles"] = list(roles)
    if extra:
        claims.update(extra)
    return claims


def managed_identity_claims(client: Application) -> dict[str, Any] | None:
    """A managed identity's tokens name it by resource id (`xms_mirid`), as Entra's do. Its host
    authenticated with a certificate-bound assertion, so `azpacr` is already 2."""
    if client.managed_resource_id is None:
        return None
    return {"xms_mirid": client.managed_resource_id}


def credential_claims(resource: Application, credential_id: str, credential_type: str) -> dict[str, Any]:
    """The acting credential, for tokens whose audience is the management API only: other resource
    servers (third parties among them) learn nothing about which of a client's credentials it used,
    and their tokens stay what Entra issues."""
    if resource.identifier_uri != MANAGEMENT_URI or not credential_id:
        return {}
    return {CREDENTIAL_ID_CLAIM: credential_id, CREDENTIAL_TYPE_CLAIM: credential_type}


def mint(key: ActiveKey, claims: dict[str, Any]) -> str:
    return sign(claims, key.private, alg=key.alg, kid=key.kid, typ=ACCESS_TOKEN_TYP)


_ID_BYTES = 16
_POOL_IDS = 256


class _IdPool:
    """Token ids made from `os.urandom` (the kernel's CSPRNG) 256 at a time and handed out once each:
    a `getrandom` system call per token was ~3 % of a token's CPU, and a lock and a slice of a shared
    byte pool per token cost more than the pop (issue 18). `list.pop` hands an id to exactly one caller whichever
    thread asks (it is atomic); two threads that find the list empty both refill it, with different
    bytes. A forked child starts with an empty pool, so parent and child never hand out the same id."""

    def __init__(self) -> None:
        self._ids: list[str] = []

    def take(self) -> str:
        while True:
            try:
                return self._ids.pop()
            except IndexError:
                raw = os.urandom(_ID_BYTES * _POOL_IDS)
                fresh = [b64u_encode(raw[i : i + _ID_BYTES]).decode("ascii") for i in range(0, len(raw), _ID_BYTES)]
                self._ids.extend(fresh)  # one call: no other thread sees a half-filled pool

    def reset(self) -> None:
        self._ids = []


_IDS = _IdPool()
os.register_at_fork(after_in_child=_IDS.reset)


def new_token_id() -> str:
    """128 random bits, base64url (what `secrets.token_urlsafe(16)` gives, from the pool above)."""
    return _IDS.take()
