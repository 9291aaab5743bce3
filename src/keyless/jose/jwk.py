"""Public JWKs for the keys we sign with; `kid` is the RFC 7638 thumbprint (catalog I02, I07)."""

from __future__ import annotations

from typing import Any

from keyless.crypto.keys import PublicKey, is_public_key
from keyless.crypto.thumbprints import jwk_thumbprint, required_members

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


def public_jwk(key: PublicKey, alg: str) -> dict[str, Any]:
    jwk: dict[str, Any] = dict(required_members(key))
    jwk.update({"kid": jwk_thumbprint(key), "use": "sig", "alg": alg})
    assert not (_PRIVATE_MEMBERS & jwk.keys())
    return jwk


def key_id(key: PublicKey) -> str:
    return jwk_thumbprint(key)


def public_key_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """Parse a public JWK (ignoring any private members, which a JWKS must not carry)."""
    from jwt import PyJWK
    from jwt.exceptions import PyJWKError

    public = {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}
    try:
        key = PyJWK(public).key
    except (PyJWKError, KeyError, ValueError, TypeError):
        raise ValueError("unusable JWK") from None
    if is_public_key(key):
        return key
    raise ValueError("JWK is not a supported public key")
