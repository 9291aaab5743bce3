"""RFC 7638 JWK thumbprints, used as the `kid` of every signing key.

Computed here from the key's numbers rather than from a serialised JWK: the thumbprint is defined
over the *required* members only, in lexicographic order, and hashing a library's full JWK output
(with `alg`, `use`, ...) is the classic mistake (catalog I07).
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keyless.crypto.keys import PublicKey


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64u(value.to_bytes(size, "big"))


def required_members(key: PublicKey) -> dict[str, str]:
    """The RFC 7638 §3.2 required members of the public JWK for `key`."""
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return {"e": _uint(nums.e), "kty": "RSA", "n": _uint(nums.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        size = (key.curve.key_size + 7) // 8
        pn = key.public_numbers()
        return {"crv": curve, "kty": "EC", "x": _uint(pn.x, size), "y": _uint(pn.y, size)}
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64u(raw)}
    raise TypeError("unsupported public key type")


def jwk_thumbprint_of_members(members: dict[str, str]) -> str:
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64u(hashlib.sha256(canonical.encode("utf-8")).digest())


def jwk_thumbprint(key: PublicKey) -> str:
    return jwk_thumbprint_of_members(required_members(key))
