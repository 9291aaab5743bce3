"""Public JWKs for the keys we sign with; `kid` is the RFC 7638 thumbprint (catalog I02, I07)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyless.crypto.keys import PublicKey, is_public_key
from keyless.crypto.thumbprints import jwk_thumbprint, required_members
from keyless.errors import KeylessError

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
    from jwt.exceptions import PyJWKError, PyJWTError

    public = {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}
    try:
        key = PyJWK(public).key
    except (PyJWKError, PyJWTError, KeyError, ValueError, TypeError):  # e.g. an RSA entry without n/e
        raise ValueError("unusable JWK") from None
    if is_public_key(key):
        return key
    raise ValueError("JWK is not a supported public key")


# The key type each algorithm may be used with (RFC 7518 §3, RFC 8037): a key verifies only
# algorithms of its own type, and only its declared `alg` when the JWK names one.
ALG_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "EdDSA": ("OKP", "Ed25519"),
}


@dataclass(frozen=True)
class JwkEntry:
    key: PublicKey
    algorithms: frozenset[str]


VerificationKeys = dict[str, JwkEntry]
MIN_RSA_BITS = 2048


class JwkSetRejected(KeylessError, ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_jwk_set(jwks: Any, *, max_keys: int) -> VerificationKeys:
    """A third party's JWKS as `kid -> key + the algorithms it may verify`. Entries that are not
    signature keys, lack a `kid`, or cannot be parsed are skipped; a `kid` listed twice verifies
    nothing (ambiguous); a set with more than `max_keys` entries or no usable key is refused."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise JwkSetRejected("jwks_malformed")
    if len(entries) > max_keys:
        raise JwkSetRejected("jwks_too_many_keys")
    keys: VerificationKeys = {}
    seen: set[str] = set()
    for jwk in entries:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
            continue
        if kid in seen:
            keys.pop(kid, None)
            continue
        seen.add(kid)
        kty_crv = (jwk.get("kty"), jwk.get("crv"))
        algs = frozenset(a for a, kc in ALG_KEY_TYPES.items() if kc == kty_crv)
        declared = jwk.get("alg")
        if declared is not None:
            algs = algs & {declared} if isinstance(declared, str) else frozenset()
        if not algs:
            continue
        try:
            key = public_key_from_jwk(jwk)
        except ValueError:
            continue
        if kty_crv[0] == "RSA" and getattr(key, "key_size", 0) < MIN_RSA_BITS:
            continue  # RFC 7518 §3.3 and §3.5: RSA keys of 2048 bits or more
        keys[kid] = JwkEntry(key=key, algorithms=algs)
    if not keys:
        raise JwkSetRejected("jwks_no_usable_key")
    return keys
